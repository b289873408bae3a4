import { Gauge, type Registry } from 'prom-client';
import type { RejectedCounts } from './master-dataset-views.ts';

const METRIC = 'lambda_rejected_records';

/**
 * `lambda_rejected_records{reason}`: the number `/v1/status` shows as `rejected`, read when
 * scraped. A gauge, not a counter: it is the rejected table's set, which survives a restart, and
 * right after one it climbs back while the speed layer replays the log above the batch cut.
 * A scrape that cannot read it (the database is closing) leaves the last values.
 */
export function registerRejectedGauge(registry: Registry, read: () => Promise<RejectedCounts>): void {
  registry.removeSingleMetric(METRIC);
  new Gauge({
    name: METRIC,
    help: 'Rejected records the rejected table stands for (archived below the batch cuts plus the speed layer above them), by reason; the count /v1/status shows',
    labelNames: ['reason'],
    registers: [registry],
    async collect(this: Gauge<'reason'>) {
      const counts = await read().catch(() => undefined);
      if (counts) for (const [reason, n] of Object.entries(counts.byReason)) this.set({ reason }, n);
    },
  });
}
