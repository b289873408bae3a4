import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import { receiverPerSuite } from '../support/webhook-receiver.ts';
import { memoryLogger, type LogLine } from '../support/memory-logger.ts';
import { ViewFeeder } from '../support/view-feeder.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { waitFor } from '../harness/wait-for.ts';

const SECOND = 1_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);
// The faults are injected on purpose: what the sinks log about them is asserted on, not printed.
const { logger, lines: logLines } = memoryLogger('alerts-webhook-test');
const logErrorMessage = (line: LogLine) => (line['err'] as { message?: string } | undefined)?.message ?? '';
const BACKOFF = { initialMs: 50, maxMs: 1_000 };

function config(webhookUrl: string, timeout = '500ms'): LoadedConfig {
  return parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, host: VARCHAR, errors: INTEGER}}
views:
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors)}}
alerts:
  error_burst:
    view: errors_10s
    condition: "errors > 5"
    severity: critical
    labels: {team: payments}
    notify: [{webhook: "${webhookUrl}", timeout: ${timeout}}]
`);
}

/** One evaluation per 10-second bucket of simulated event time; hosts flip between 9 and 0 errors. */
class Scenario {
  private step = 0;
  private offset = 0;

  constructor(private readonly hosts: readonly string[]) {}

  async next(feeder: ViewFeeder, alerting: Alerting): Promise<number> {
    const bucketMs = T0 + this.step * 10 * SECOND;
    const events = this.hosts.map((host, i) => ({ ts: bucketMs + SECOND, host, errors: (this.step + i) % 2 === 0 ? 9 : 0, offset: this.offset++ }));
    this.step++;
    await feeder.toRealtime(events);
    const started = performance.now();
    await alerting.evaluate(bucketMs + 2 * SECOND);
    return performance.now() - started;
  }
}

describe('webhook sink', () => {
  const suite = receiverPerSuite('alerts-webhook-');

  it('receives every notification, in order and once, after being down for 30 s across a process restart', async () => {
    const storageDir = join(suite.dir, 'outage');
    // A timeout is an answer that may still arrive: a generous one keeps a slow machine from
    // turning an on-time delivery into a (legitimate, at-least-once) duplicate.
    const loaded = config(suite.receiver.url, '5s');
    const start = async () => {
      const db = await ServingDatabase.create(loaded);
      const alerting = await Alerting.start({ loaded, database: db, storageDir, logger, backoff: BACKOFF });
      return { db, alerting, feeder: new ViewFeeder(db.adminConnection, loaded.schema, db.bound) };
    };
    let node = await start();
    const scenario = new Scenario(['h1', 'h2', 'h3']);

    await scenario.next(node.feeder, node.alerting);
    await waitFor('the first notifications', () => suite.receiver.received.length === 2, 5_000);
    const first = suite.receiver.received[0]!;
    expect(Object.keys(first).sort()).toEqual(['alert', 'at', 'id', 'key', 'labels', 'reminder', 'severity', 'since', 'state', 'value', 'window'].sort());
    expect(first).toMatchObject({ alert: 'error_burst', state: 'firing', key: { host: 'h1' }, value: { errors: 9 }, severity: 'critical', labels: { team: 'payments' } });
    expect(first.window).toEqual({ start: new Date(T0).toISOString(), end: new Date(T0 + 10 * SECOND).toISOString() });
    expect(suite.receiver.headers[0]!['idempotency-key']).toBe(first.id);

    await suite.receiver.down();
    const outageStarted = Date.now();
    const evaluationMs: number[] = [];
    // 15 s of transitions while the receiver is down; then the process restarts (store kept).
    while (Date.now() - outageStarted < 15_000) {
      evaluationMs.push(await scenario.next(node.feeder, node.alerting));
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect((await node.alerting.api()).notifier.sinks[0]!.pending).toBeGreaterThan(10);
    await node.alerting.close();
    node.db.close();
    node = await start();
    while (Date.now() - outageStarted < 30_000) {
      evaluationMs.push(await scenario.next(node.feeder, node.alerting));
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    // Delivery never held evaluation back while the sink was down: an evaluation that waited for
    // a delivery attempt would take at least the sink's 5 s timeout. (Not a speed check: on a
    // loaded machine an evaluation can take a second.)
    expect(Math.max(...evaluationMs)).toBeLessThan(5_000);

    await suite.receiver.up();
    const reader = await node.db.connect();
    const expected = (await reader.runAndReadAll('SELECT id FROM alert_history WHERE notify ORDER BY seq')).getRowsJS().map(([id]) => String(id));
    reader.closeSync();
    expect(expected.length).toBeGreaterThan(50);
    // The next retry comes within the backoff's 1 s cap; then the backlog goes out one at a time,
    // in order (a few ms each, many more on a loaded machine).
    await waitFor('every notification after the outage', () => suite.receiver.received.length >= expected.length, 15_000);
    expect(suite.receiver.received.map((p) => p.id)).toEqual(expected);
    expect((await node.alerting.api()).notifier.sinks[0]).toMatchObject({ pending: 0, lastError: null });
    // Each process warned once that the sink was unreachable, and nothing was parked.
    expect(logLines.filter((l) => l.level === 40 && /unreachable \(ECONNREFUSED\)/.test(logErrorMessage(l))).length).toBeGreaterThanOrEqual(2);
    expect(logLines.filter((l) => l.level >= 50)).toEqual([]);

    await node.alerting.close();
    node.db.close();
  }, 65_000);

  it('retries timeouts, 5xx and passing 4xx answers with backoff; parks what the receiver keeps refusing, visibly, without blocking the rest', async () => {
    const loaded = config(suite.receiver.url);
    const db = await ServingDatabase.create(loaded);
    const alerting = await Alerting.start({ loaded, database: db, storageDir: join(suite.dir, 'retries'), logger, backoff: BACKOFF });
    const feeder = new ViewFeeder(db.adminConnection, loaded.schema, db.bound);
    const attempts = new Map<string, number>();
    suite.receiver.received.length = 0;
    suite.receiver.respond = (payload, res) => {
      const n = (attempts.get(payload.id) ?? 0) + 1;
      attempts.set(payload.id, n);
      const h1Firing = payload.key.host === 'h1' && payload.state === 'firing';
      if (h1Firing && n === 1) setTimeout(() => res.writeHead(200).end(), 1_500); // beyond the 500 ms timeout
      else if (h1Firing && n === 2) res.writeHead(503).end();
      else if (payload.key.host === 'h2') res.writeHead(400).end('{"error": "bad payload:\n  label team is not allowed"}');
      // A receiver whose token is being rotated: refuses twice, then takes it.
      else if (payload.key.host === 'h3' && payload.state === 'firing' && n <= 2) res.writeHead(401).end('token expired');
      else res.writeHead(200).end();
    };
    try {
      const scenario = new Scenario(['h1', 'h2', 'h3']);
      await scenario.next(feeder, alerting);
      await scenario.next(feeder, alerting);
      // In order: h1 firing (timeout, 503, then delivered), h3 firing (401 twice, then
      // delivered), h1 resolved, h2 firing (400 five times: parked), h3 resolved.
      await waitFor('h3 resolved', () => suite.receiver.received.some((p) => p.key.host === 'h3' && p.state === 'resolved'), 10_000);
      const byHost = (host: string) => suite.receiver.received.filter((p) => p.key.host === host).map((p) => p.state);
      expect(byHost('h1')).toEqual(['firing', 'firing', 'firing', 'resolved']);
      expect(byHost('h2')).toEqual(['firing', 'firing', 'firing', 'firing', 'firing']);
      expect(byHost('h3')).toEqual(['firing', 'firing', 'firing', 'resolved']);
      const h2Firing = suite.receiver.received.find((p) => p.key.host === 'h2')!;
      const sink = (await alerting.api()).notifier.sinks[0]!;
      expect(sink).toMatchObject({ pending: 0, lastError: null, parked: 1 });
      expect(sink.recentlyParked).toEqual([
        { id: h2Firing.id, alert: 'error_burst', error: expect.stringMatching(/answered HTTP 400: \{"error": "bad payload: label team is not allowed"\}$/), parkedAt: expect.any(String) },
      ]);
      // Parked is not lost: the notification stays in alert_history.
      const reader = await db.connect();
      const rows = (await reader.runAndReadAll(`SELECT count(*)::INTEGER FROM alert_history WHERE id = '${h2Firing.id}'`)).getRowsJS();
      reader.closeSync();
      expect(rows).toEqual([[1]]);
      // The timeout and the refusals were warned about; the parked notification is one error line naming it.
      expect(logLines.some((l) => l.level === 40 && /no answer within 500 ms/.test(logErrorMessage(l)))).toBe(true);
      expect(logLines.some((l) => l.level === 40 && /answered HTTP 401: token expired/.test(logErrorMessage(l)))).toBe(true);
      expect(logLines.filter((l) => l.level >= 50).map((l) => [l['notification'], l.msg])).toEqual([[h2Firing.id, expect.stringMatching(/refused a notification \d+ times; parked it/)]]);
    } finally {
      suite.receiver.respond = (_p, res) => res.writeHead(200).end('ok');
      await alerting.close();
      db.close();
    }
  }, 30_000);
});
