import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The archiver's Prometheus metrics (names prefixed `lambda_archiver_`). */
export class ArchiverMetrics {
  readonly records: Counter<'result'>;
  readonly segmentsWritten: Counter;
  readonly flushFailures: Counter;
  readonly flushDuration: Histogram;
  readonly gaps: Counter<'partition'>;
  readonly gapOffsets: Counter<'partition'>;
  readonly archivedEnd: Gauge<'partition'>;
  readonly lag: Gauge<'partition'>;
  readonly compactions: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const partition = ['partition'] as const;
    this.records = new Counter({ name: 'lambda_archiver_records_total', help: 'Records written to the master dataset (archived) or beside it (rejected)', labelNames: ['result'], registers });
    this.segmentsWritten = new Counter({ name: 'lambda_archiver_segments_written_total', help: 'Master-dataset segments written', registers });
    this.flushFailures = new Counter({ name: 'lambda_archiver_flush_failures_total', help: 'Segment writes that failed (retried)', registers });
    this.flushDuration = new Histogram({ name: 'lambda_archiver_flush_duration_seconds', help: 'Time to write one segment durably', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.gaps = new Counter({ name: 'lambda_archiver_gaps_total', help: 'Offset ranges the source deleted (retention) before they were archived', labelNames: partition, registers });
    this.gapOffsets = new Counter({ name: 'lambda_archiver_gap_offsets_total', help: 'Offsets the source deleted (retention) before they were archived', labelNames: partition, registers });
    this.archivedEnd = new Gauge({ name: 'lambda_archiver_archived_offset', help: 'Per partition, the offset below which everything is archived (exclusive)', labelNames: partition, registers });
    this.lag = new Gauge({ name: 'lambda_archiver_lag_offsets', help: 'Per partition, offsets written to the source but not yet archived', labelNames: partition, registers });
    this.compactions = new Counter({ name: 'lambda_archiver_compactions_total', help: 'Runs of small segments merged into one', labelNames: ['result'], registers });
  }
}
