import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import { ViewFeeder } from '../support/view-feeder.ts';
import { receiverPerSuite } from '../support/webhook-receiver.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { waitFor } from '../harness/wait-for.ts';

const SECOND = 1_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);
const logger = createLogger('alerts-history-retention-test', { level: 'error' });

interface HistoryRow {
  readonly seq: number;
  readonly id: string;
  readonly host: string;
  readonly state: string;
  readonly notify: boolean;
  readonly recordedMs: number;
}

describe('alert_history retention', () => {
  const suite = receiverPerSuite('alerts-retention-');

  it('prunes records past the retention, but never undelivered notifications nor the state of a firing instance', async () => {
    const loaded = parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, host: VARCHAR, errors: INTEGER}}
serving: {alertHistoryRetention: 1m}
views:
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors)}}
alerts:
  error_burst: {view: errors_10s, condition: "errors > 5", notify: [{webhook: "${suite.receiver.url}", timeout: 1s}]}
`);
    expect(loaded.config.serving.alertHistoryRetention).toBe(60 * SECOND);
    const storageDir = join(suite.dir, 'store');
    const start = async () => {
      const db = await ServingDatabase.create(loaded);
      const alerting = await Alerting.start({ loaded, database: db, storageDir, logger, backoff: { initialMs: 50, maxMs: 200 }, pruneEveryMs: 3_600_000 });
      return { db, alerting, feeder: new ViewFeeder(db.adminConnection, loaded.schema, db.bound) };
    };
    let node = await start();
    let offset = 0;
    /** One bucket of events at T0 + step × 10 s, evaluated 2 s into it. */
    const step = async (n: number, errorsByHost: Record<string, number>) => {
      const bucketMs = T0 + n * 10 * SECOND;
      await node.feeder.toRealtime(Object.entries(errorsByHost).map(([host, errors]) => ({ ts: bucketMs + SECOND, host, errors, offset: offset++ })));
      await node.alerting.evaluate(bucketMs + 2 * SECOND);
    };
    const history = async (): Promise<HistoryRow[]> => {
      const reader = await node.db.connect();
      try {
        const rows = (
          await reader.runAndReadAll(`SELECT seq, id, json_extract_string(key, '$.host'), state, notify, epoch_ms(recorded_at) FROM alert_history ORDER BY seq`)
        ).getRowsJS();
        return rows.map(([seq, id, host, state, notify, recorded]) => ({
          seq: Number(seq),
          id: String(id),
          host: String(host),
          state: String(state),
          notify: Boolean(notify),
          recordedMs: Number(recorded),
        }));
      } finally {
        reader.closeSync();
      }
    };
    try {
      // Old and delivered: h1 and h2 fire and resolve; h3 fires and stays firing from then on.
      await step(0, { h1: 9, h2: 9, h3: 9 });
      await step(1, { h1: 0, h2: 0, h3: 9 });
      await waitFor('the first five notifications', () => suite.receiver.accepted.length === 5, 10_000);
      // Old and never delivered: the receiver fails while h4 fires and resolves.
      suite.receiver.answerWith(503);
      await step(2, { h3: 9, h4: 9 });
      await step(3, { h3: 9, h4: 0 });
      // Recent: h5 fires 70 s later.
      await step(10, { h3: 9, h5: 9 });
      const nowMs = T0 + 102 * SECOND + 30 * SECOND;
      const cutoffMs = nowMs - 60 * SECOND;

      const before = await history();
      const deliveredIds = new Set(suite.receiver.accepted.map((p) => p.id));
      const latestOf = new Map(before.map((r) => [r.host, r]));
      const expected = before.filter(
        (r) => r.recordedMs >= cutoffMs || (r.notify && !deliveredIds.has(r.id)) || (latestOf.get(r.host) === r && ['pending', 'firing'].includes(r.state)),
      );
      expect(await node.alerting.pruneHistory(nowMs)).toBe(before.length - expected.length);
      const after = await history();
      expect(after).toEqual(expected);
      expect(after.map((r) => `${r.host} ${r.state}`)).toEqual(['h3 firing', 'h4 firing', 'h4 resolved', 'h5 firing']);

      // What was kept is still delivered once the receiver is back, and h3 is still firing after a restart.
      suite.receiver.answerWith(200);
      await waitFor('the held-back notifications', () => suite.receiver.accepted.length === 8, 10_000);
      expect(suite.receiver.accepted.slice(5).map((p) => `${String(p.key.host)} ${p.state}`)).toEqual(['h4 firing', 'h4 resolved', 'h5 firing']);
      await node.alerting.close();
      node.db.close();
      node = await start();
      const instances = (await node.alerting.api()).instances.map((i) => `${String(i.key.host)} ${i.state}`).sort();
      // (h4's resolution is recent enough to be listed; h1's and h2's were pruned.)
      expect(instances).toEqual(['h3 firing', 'h4 resolved', 'h5 firing']);
    } finally {
      suite.receiver.answerWith(200);
      await node.alerting.close();
      node.db.close();
    }
  }, 60_000);
});
