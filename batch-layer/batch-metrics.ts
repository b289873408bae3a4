import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The batch layer's Prometheus metrics (names prefixed `lambda_batch_`). */
export class BatchMetrics {
  readonly runs: Counter<'outcome' | 'reason'>;
  readonly runDuration: Histogram;
  readonly currentVersion: Gauge;
  readonly lastSuccessSeconds: Gauge;
  readonly isMaster: Gauge;
  readonly eventsRead: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.runs = new Counter({
      name: 'lambda_batch_runs_total',
      help: 'Batch runs by outcome: succeeded, failed, aborted (leadership ended), skipped (a tick while a run was going)',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.runDuration = new Histogram({
      name: 'lambda_batch_run_duration_seconds',
      help: 'Duration of batch runs, recompute to publication',
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
      registers,
    });
    this.currentVersion = new Gauge({ name: 'lambda_batch_published_version', help: 'The last batch version this process published', registers });
    this.lastSuccessSeconds = new Gauge({ name: 'lambda_batch_last_success_timestamp_seconds', help: 'When the last batch run succeeded (Unix time)', registers });
    this.isMaster = new Gauge({ name: 'lambda_batch_is_master', help: '1 while this process is the batch master', registers });
    this.eventsRead = new Gauge({ name: 'lambda_batch_events_read', help: 'Records read by the last successful batch run', registers });
  }
}
