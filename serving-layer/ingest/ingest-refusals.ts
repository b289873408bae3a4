import { Counter, type Registry } from 'prom-client';
import { REJECT_REASONS, type RejectReason } from '../../core/events/decode-event.ts';

const METRIC = 'lambda_ingest_refused_records_total';

/** Lines refused so far, as `/v1/status` shows them (`refusedAtIngest`). */
export interface RefusedCounts {
  readonly total: number;
  readonly byReason: Readonly<Record<RejectReason, number>>;
}

/**
 * Lines `POST /v1/events` refused as malformed since this process started. They never reach the
 * log, so no layer sees them and the `rejected` table never holds them: this count (status and
 * `lambda_ingest_refused_records_total{reason}`) is the only trace besides the answer to the POST.
 */
export class IngestRefusals {
  private readonly counts = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]));
  private readonly counter: Counter<'reason'>;

  constructor(registry: Registry) {
    // A node started again in the same process takes the metric over.
    registry.removeSingleMetric(METRIC);
    this.counter = new Counter({ name: METRIC, help: 'Lines refused by POST /v1/events as malformed (never stored), by reason', labelNames: ['reason'], registers: [registry] });
    for (const reason of REJECT_REASONS) this.counter.inc({ reason }, 0);
  }

  refused(reason: RejectReason): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.counter.inc({ reason });
  }

  counted(): RefusedCounts {
    const byReason = Object.fromEntries(this.counts) as Record<RejectReason, number>;
    return { total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason };
  }
}
