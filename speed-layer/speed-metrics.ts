import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventsTailStatus } from './events-tail.ts';
import type { RejectedRecord } from './micro-batch-decoder.ts';
import type { PartitionStatus } from './partition-progress.ts';

const METRIC_NAMES = [
  'lambda_speed_records_total',
  'lambda_speed_rejected_records_total',
  'lambda_speed_micro_batches_total',
  'lambda_speed_micro_batch_failures_total',
  'lambda_speed_skipped_offsets_total',
  'lambda_speed_micro_batch_duration_seconds',
  'lambda_speed_records_per_second',
  'lambda_speed_lag_records',
  'lambda_speed_freshness_seconds',
  'lambda_speed_stalled_partitions',
  'lambda_speed_realtime_rows',
  'lambda_speed_events_tail_rows',
  'lambda_speed_events_lagging',
  'lambda_speed_events_lag_records',
] as const;

/** Records per second are averaged over this much recent time. */
const RATE_WINDOW_MS = 10_000;

export interface SpeedMetricsSources {
  readonly partitions: () => readonly PartitionStatus[];
  readonly realtimeRows: () => ReadonlyMap<string, number>;
  readonly eventsTail: () => EventsTailStatus;
}

/** Figures of the micro-batches so far, for status. */
export interface MicroBatchStats {
  readonly count: number;
  readonly failures: number;
  readonly lastDurationMs: number | undefined;
  /** When the last micro-batch was committed into realtime state (epoch ms). */
  readonly lastCommittedAtMs: number | undefined;
  readonly lastRecords: number | undefined;
  readonly recordsPerSecond: number;
}

/**
 * The speed layer's Prometheus metrics (`lambda_speed_*`), registered on the process registry.
 * Per-partition gauges are computed when scraped, from the live partition progress.
 */
export class SpeedMetrics {
  private readonly records: Counter<'outcome'>;
  private readonly rejected: Counter<'reason'>;
  private readonly microBatches: Counter;
  private readonly failures: Counter;
  private readonly skipped: Counter;
  private readonly duration: Histogram;
  private readonly recent: { atMs: number; records: number }[] = [];
  private stats = {
    count: 0,
    failures: 0,
    lastDurationMs: undefined as number | undefined,
    lastRecords: undefined as number | undefined,
    lastCommittedAtMs: undefined as number | undefined,
  };

  constructor(registry: Registry = new Registry(), sources: SpeedMetricsSources) {
    const registers = [registry];
    // A speed layer created again in the same process (a restart) takes the metrics over.
    for (const name of METRIC_NAMES) registry.removeSingleMetric(name);
    this.records = new Counter({ name: 'lambda_speed_records_total', help: 'Records processed by the speed layer, by outcome', labelNames: ['outcome'], registers });
    this.rejected = new Counter({ name: 'lambda_speed_rejected_records_total', help: "Records this process's speed layer rejected since it started (from the batch cut it started at), by reason", labelNames: ['reason'], registers });
    this.microBatches = new Counter({ name: 'lambda_speed_micro_batches_total', help: 'Micro-batches committed', registers });
    this.failures = new Counter({ name: 'lambda_speed_micro_batch_failures_total', help: 'Micro-batch attempts that failed and were retried', registers });
    this.skipped = new Counter({ name: 'lambda_speed_skipped_offsets_total', help: 'Offsets deleted from the log before the speed layer read them', registers });
    this.duration = new Histogram({
      name: 'lambda_speed_micro_batch_duration_seconds',
      help: 'Time to decode a micro-batch and commit it to realtime state',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    const recordsPerSecond = () => this.recordsPerSecond();
    new Gauge({
      name: 'lambda_speed_records_per_second',
      help: `Records committed per second over the last ${RATE_WINDOW_MS / 1000} s`,
      registers,
      collect(this: Gauge) {
        this.set(recordsPerSecond());
      },
    });
    const perPartition = (name: string, help: string, value: (p: PartitionStatus) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['partition'],
        registers,
        collect(this: Gauge<'partition'>) {
          this.reset();
          for (const p of sources.partitions()) {
            const v = value(p);
            if (v !== undefined) this.set({ partition: String(p.partition) }, v);
          }
        },
      });
    perPartition('lambda_speed_lag_records', 'Records in the partition not yet in realtime state', (p) => p.lagRecords);
    perPartition('lambda_speed_freshness_seconds', 'Now minus the newest event time seen in the partition', (p) =>
      p.freshnessMs === undefined ? undefined : p.freshnessMs / 1000,
    );
    new Gauge({
      name: 'lambda_speed_stalled_partitions',
      help: 'Partitions behind the log end that have not advanced for the stall timeout',
      registers,
      collect(this: Gauge) {
        this.set(sources.partitions().filter((p) => p.stalled).length);
      },
    });
    new Gauge({
      name: 'lambda_speed_realtime_rows',
      help: 'Rows of realtime state per view',
      labelNames: ['view'],
      registers,
      collect(this: Gauge<'view'>) {
        for (const [view, rows] of sources.realtimeRows()) this.set({ view }, rows);
      },
    });
    const tailGauge = (name: string, help: string, value: (tail: EventsTailStatus) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect(this: Gauge) {
          this.set(value(sources.eventsTail()));
        },
      });
    tailGauge('lambda_speed_events_tail_rows', 'Accepted events kept for `events` above the archive (at most speed.maxEventsTail)', (t) => t.tailRows);
    tailGauge('lambda_speed_events_lagging', '1 while `events` lacks accepted events the views hold (the tail hit speed.maxEventsTail)', (t) => (t.lagging ? 1 : 0));
    tailGauge('lambda_speed_events_lag_records', 'Offsets the views hold and `events` does not yet', (t) => t.lagRecords);
  }

  microBatchCommitted(durationMs: number, accepted: number, rejected: readonly RejectedRecord[]): void {
    this.records.inc({ outcome: 'accepted' }, accepted);
    if (rejected.length > 0) this.records.inc({ outcome: 'rejected' }, rejected.length);
    for (const r of rejected) this.rejected.inc({ reason: r.reason });
    this.microBatches.inc();
    this.duration.observe(durationMs / 1000);
    const nowMs = Date.now();
    this.recent.push({ atMs: nowMs, records: accepted + rejected.length });
    this.stats = { ...this.stats, count: this.stats.count + 1, lastDurationMs: durationMs, lastRecords: accepted + rejected.length, lastCommittedAtMs: Date.now() };
  }

  microBatchFailed(): void {
    this.failures.inc();
    this.stats = { ...this.stats, failures: this.stats.failures + 1 };
  }

  offsetsSkipped(count: number): void {
    this.skipped.inc(count);
  }

  recordsPerSecond(): number {
    const sinceMs = Date.now() - RATE_WINDOW_MS;
    while (this.recent.length > 0 && this.recent[0]!.atMs < sinceMs) this.recent.shift();
    return this.recent.reduce((sum, r) => sum + r.records, 0) / (RATE_WINDOW_MS / 1000);
  }

  microBatchStats(): MicroBatchStats {
    return { ...this.stats, recordsPerSecond: this.recordsPerSecond() };
  }
}
