import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { AlertEvaluator } from '../../serving-layer/alerts/alert-evaluator.ts';
import { parseJsonObject, type AlertRecord } from '../../serving-layer/alerts/alert-record.ts';
import { resolveAlertRules } from '../../serving-layer/alerts/alert-rule.ts';
import { alertsResponse } from '../../serving-layer/alerts/alerts-api.ts';
import { INACTIVE, stepAlert, type InstanceState } from '../../serving-layer/alerts/alert-state.ts';
import { AlertStore } from '../../serving-layer/alerts/alert-store.ts';
import { ViewFeeder, type TestEvent } from '../support/view-feeder.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { seededRandom } from '../../core/random/seeded-random.ts';

const SECOND = 1_000;
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);
const logger = createLogger('alerts-evaluator-test');

const BASE = `
source:
  timestamp: ts
  schema: {ts: TIMESTAMP, page: VARCHAR, host: VARCHAR, latency_ms: DOUBLE, errors: INTEGER}
views:
  traffic: {window: 1 minute, dimensions: [page, host], measures: {views: count(*), avg_latency: avg(latency_ms), max_latency: max(latency_ms)}}
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors)}}
  totals: {dimensions: [page], measures: {views: count(*)}}
`;

interface Harness {
  readonly db: ServingDatabase;
  readonly feeder: ViewFeeder;
  readonly store: AlertStore;
  readonly evaluator: AlertEvaluator;
  readonly records: AlertRecord[];
  readonly notified: () => { alert: string; key: Record<string, unknown>; state: string; reminder: boolean; atMs: number }[];
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0).reverse()) await close();
});

async function harness(alertsYaml: string, options: { storeFile?: string; db?: ServingDatabase; idleMs?: number } = {}): Promise<Harness> {
  const loaded = parseConfig(`${BASE}alerts:\n${alertsYaml}`);
  const db = options.db ?? (await ServingDatabase.create(loaded));
  const feeder = new ViewFeeder(db.adminConnection, loaded.schema, db.bound);
  const store = await AlertStore.open(db, { file: options.storeFile ?? ':memory:' });
  const records: AlertRecord[] = [];
  const evaluator = await AlertEvaluator.create({
    database: db,
    rules: resolveAlertRules(loaded),
    store,
    onRecords: (r) => records.push(...r),
    logger,
    ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
  });
  open.push(async () => {
    await evaluator.close();
    await store.close();
    if (!options.db) db.close();
  });
  const notified = () =>
    records.filter((r) => r.notify).map((r) => ({ alert: r.alert, key: parseJsonObject(r.keyJson)!, state: r.status, reminder: r.reminder, atMs: r.atMs }));
  return { db, feeder, store, evaluator, records, notified };
}

/** The view's measures over raw events, computed in JS: the reference the SQL must match. */
function trafficReference(events: readonly TestEvent[], startMs: number, endExclusiveMs: number) {
  const byKey = new Map<string, { views: number; sum: number; count: number; max: number | null }>();
  for (const e of events) {
    if (e.ts < startMs || e.ts >= endExclusiveMs) continue;
    const key = JSON.stringify({ page: e.page, host: e.host });
    const acc = byKey.get(key) ?? { views: 0, sum: 0, count: 0, max: null };
    acc.views++;
    if (typeof e.latency_ms === 'number') {
      acc.sum += e.latency_ms;
      acc.count++;
      acc.max = acc.max === null ? e.latency_ms : Math.max(acc.max, e.latency_ms);
    }
    byKey.set(key, acc);
  }
  return new Map([...byKey].map(([key, a]) => [key, { views: a.views, avg_latency: a.count === 0 ? null : a.sum / a.count, max_latency: a.max }]));
}

const bucketOf = (ms: number, bucketMs: number) => Math.floor(ms / bucketMs) * bucketMs;

describe('alert evaluation on the merged batch and realtime state', () => {
  it('computes a 5-minute average as sum/count over the raw events in the window, never as an average of averages', async () => {
    const h = await harness(`  everything: {view: traffic, window: 5 minutes, condition: "views > 0"}\n`);
    let sawAverageOfAveragesDiffer = false;
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            minute: fc.integer({ min: 0, max: 9 }),
            second: fc.integer({ min: 0, max: 59 }),
            page: fc.constantFrom('/a', '/b', '/checkout'),
            host: fc.constantFrom('h1', 'h2'),
            latency: fc.option(fc.integer({ min: 0, max: 2_000 }), { freq: 6 }),
            partition: fc.integer({ min: 0, max: 1 }),
          }),
          { minLength: 1, maxLength: 300 },
        ),
        fc.integer({ min: 0, max: 300 }),
        async (raw, cut) => {
          const events: TestEvent[] = raw.map((r, i) => ({
            ts: T0 + r.minute * MINUTE + r.second * SECOND,
            page: r.page,
            host: r.host,
            latency_ms: r.latency,
            partition: r.partition,
            offset: i,
          }));
          await h.feeder.clear();
          // Offsets below the cut are in the batch view, the rest in realtime blocks.
          await h.feeder.toBatch(events.filter((e) => e.offset! < cut));
          await h.feeder.toRealtime(events.filter((e) => e.offset! >= cut));
          // A fresh evaluator and store each run: its clock starts at the newest bucket of this data.
          const store = await AlertStore.open(h.db, { file: ':memory:', catalog: `run_${run++}` });
          const evaluator = await AlertEvaluator.create({ database: h.db, rules: h.evaluator.rules, store, logger });
          try {
            const { records } = await evaluator.evaluate(T0 + 20 * MINUTE);
            const newest = Math.max(...events.map((e) => bucketOf(e.ts, MINUTE)));
            const window = { startMs: newest - 4 * MINUTE, endExclusiveMs: newest + MINUTE };
            const expected = trafficReference(events, window.startMs, window.endExclusiveMs);
            const firing = records.filter((r) => r.status === 'firing');
            expect(new Set(firing.map((r) => r.keyJson))).toEqual(new Set(expected.keys()));
            for (const record of firing) {
              const want = expected.get(record.keyJson)!;
              const got = parseJsonObject(record.valueJson)!;
              expect(record.window).toEqual(window);
              expect(got.views).toBe(want.views);
              expect(got.max_latency).toBe(want.max_latency);
              if (want.avg_latency === null) expect(got.avg_latency).toBeNull();
              else expect(got.avg_latency as number).toBeCloseTo(want.avg_latency, 9);
              // The same instance's per-bucket averages, averaged: what the SQL must not compute.
              const perBucket = [0, 1, 2, 3, 4]
                .map((b) => trafficReference(events, window.startMs + b * MINUTE, window.startMs + (b + 1) * MINUTE).get(record.keyJson)?.avg_latency)
                .filter((a): a is number => typeof a === 'number');
              const averageOfAverages = perBucket.reduce((s, a) => s + a, 0) / perBucket.length;
              if (want.avg_latency !== null && Math.abs(averageOfAverages - want.avg_latency) > 1e-6) sawAverageOfAveragesDiffer = true;
            }
          } finally {
            await evaluator.close();
            await store.close();
          }
        },
      ),
      {
        numRuns: 15,
        // One bucket with a single slow event, the next with three fast ones: 550 as an average of
        // averages, 325 as it should be.
        examples: [
          [
            [
              { minute: 5, second: 1, page: '/checkout' as const, host: 'h1' as const, latency: 1_000, partition: 0 },
              ...[2, 3, 4].map((second) => ({ minute: 6, second, page: '/checkout' as const, host: 'h1' as const, latency: 100, partition: 1 })),
            ],
            2,
          ],
        ],
      },
    );
    expect(sawAverageOfAveragesDiffer).toBe(true);
  });

  it('fires on a latency spike held for `for`, resolves once the window is clear again, and matches a JS reference step by step', async () => {
    const h = await harness(
      `  slow_checkout: {view: traffic, where: "page = '/checkout'", window: 2 minutes, condition: "avg_latency > 500", clear: "avg_latency < 400", for: 30s}\n`,
    );
    const rule = h.evaluator.rules[0]!;
    const fed: TestEvent[] = [];
    const expected: { key: string; state: string; atMs: number }[] = [];
    let reference: InstanceState = INACTIVE;
    let offset = 0;
    const random = seededRandom(7);
    for (let batchMs = T0 + 10 * SECOND; batchMs <= T0 + 12 * MINUTE; batchMs += 10 * SECOND) {
      const spike = batchMs >= T0 + 3 * MINUTE && batchMs < T0 + 5 * MINUTE;
      const batch: TestEvent[] = [];
      for (let i = 0; i < 3; i++) {
        const ts = batchMs - Math.floor(random() * 9 * SECOND);
        batch.push({ ts, page: '/checkout', host: 'h1', latency_ms: (spike ? 900 : 100) + Math.floor(random() * 40), offset: offset++ });
        batch.push({ ts, page: '/home', host: 'h1', latency_ms: 950, offset: offset++ }); // slow, but not what `where` selects
      }
      fed.push(...batch);
      await h.feeder.toRealtime(batch);
      const nowMs = batchMs + SECOND;
      await h.evaluator.evaluate(nowMs);

      const newest = Math.max(...fed.map((e) => bucketOf(e.ts, MINUTE)));
      const value = trafficReference(fed, newest - MINUTE, newest + MINUTE).get(JSON.stringify({ page: '/checkout', host: 'h1' }));
      const avg = value?.avg_latency ?? null;
      const step = stepAlert(reference, { conditionTrue: avg !== null && avg > 500, clearTrue: avg === null || avg < 400, value: null, nowMs }, rule.timing);
      reference = step.state;
      for (const t of step.transitions) expected.push({ key: '{"page":"/checkout","host":"h1"}', state: t.status, atMs: t.atMs });
    }
    expect(h.records.map((r) => ({ key: r.keyJson, state: r.status, atMs: r.atMs }))).toEqual(expected);
    const notified = h.notified();
    expect(notified.map((n) => n.state)).toEqual(['firing', 'resolved']);
    expect(notified.every((n) => n.key.page === '/checkout')).toBe(true);
    expect(notified[0]!.atMs).toBeGreaterThanOrEqual(T0 + 3 * MINUTE + 30 * SECOND);
    expect(notified[1]!.atMs).toBeGreaterThan(T0 + 5 * MINUTE);
    expect(parseJsonObject(h.records.find((r) => r.status === 'resolved')!.valueJson)!.avg_latency as number).toBeLessThan(400);
  });

  /** Feeds one bucket of `errors_10s` per step (10 s apart) for host h1 and evaluates 2 s into it. */
  async function feedErrorBuckets(h: Harness, perBucket: readonly number[], startStep = 0): Promise<void> {
    for (const [i, errors] of perBucket.entries()) {
      const bucketMs = T0 + (startStep + i) * 10 * SECOND;
      await h.feeder.toRealtime([{ ts: bucketMs + SECOND, host: 'h1', errors, offset: startStep + i }]);
      await h.evaluator.evaluate(bucketMs + 2 * SECOND);
    }
  }

  it('holds back flapping shorter than `for`: pending then inactive in the history, nothing notified', async () => {
    const h = await harness(`  error_burst: {view: errors_10s, condition: "errors > 5", for: 30s}\n`);
    await feedErrorBuckets(h, [0, 9, 9, 0, 9, 9, 0, 9, 0]);
    expect(h.notified()).toEqual([]);
    expect(h.records.map((r) => r.status)).toEqual(['pending', 'inactive', 'pending', 'inactive', 'pending', 'inactive']);

    await feedErrorBuckets(h, [9, 9, 9, 9, 9, 0], 9);
    expect(h.notified().map((n) => [n.state, (n.atMs - T0) / SECOND])).toEqual([
      ['firing', 122], // pending at 92 s, held for 30 s
      ['resolved', 142],
    ]);
  });

  it('holds back flapping around the threshold with `clear` (hysteresis), where a rule without it flaps', async () => {
    const h = await harness(
      [
        `  with_clear: {view: errors_10s, condition: "errors > 5", clear: "errors < 3"}`,
        `  without_clear: {view: errors_10s, condition: "errors > 5"}`,
        '',
      ].join('\n'),
    );
    await feedErrorBuckets(h, [0, 6, 4, 6, 4, 4, 2, 0]);
    const states = (alert: string) => h.notified().filter((n) => n.alert === alert).map((n) => n.state);
    expect(states('with_clear')).toEqual(['firing', 'resolved']);
    expect(states('without_clear')).toEqual(['firing', 'resolved', 'firing', 'resolved']);
    const resolved = h.records.find((r) => r.alert === 'with_clear' && r.status === 'resolved')!;
    expect(parseJsonObject(resolved.valueJson)).toEqual({ errors: 2 });
  });

  it('resolves an alert when its data stops arriving: the window follows the wall clock once the stream is idle', async () => {
    const h = await harness(`  error_burst: {view: errors_10s, window: 20s, condition: "errors > 5"}\n`);
    await feedErrorBuckets(h, [9]);
    expect(h.notified().map((n) => n.state)).toEqual(['firing']);
    for (let nowMs = T0 + 12 * SECOND; nowMs <= T0 + 60 * SECOND; nowMs += SECOND) await h.evaluator.evaluate(nowMs);
    const resolved = h.notified().find((n) => n.state === 'resolved');
    // Idle after one bucket (10 s) with no newer bucket; the 20 s window then slides past the data.
    expect(resolved).toBeDefined();
    expect(resolved!.atMs - T0).toBeLessThanOrEqual(40 * SECOND);
    expect(h.records.at(-1)!.valueJson).toBeNull();
  });

  it('evaluates a view of running totals without a window', async () => {
    const h = await harness(`  busy_page: {view: totals, condition: "views >= 10"}\n`);
    for (let i = 0; i < 4; i++) {
      await h.feeder.toRealtime(Array.from({ length: 4 }, (_, j) => ({ ts: T0 + i * MINUTE + j, page: '/a', offset: i * 4 + j })));
      await h.evaluator.evaluate(T0 + i * MINUTE + SECOND);
    }
    expect(h.notified()).toEqual([{ alert: 'busy_page', key: { page: '/a' }, state: 'firing', reminder: false, atMs: T0 + 2 * MINUTE + SECOND }]);
    expect(h.records.at(-1)!.window).toBeNull();
  });

  it('reminds every `repeat` while firing', async () => {
    const h = await harness(`  error_burst: {view: errors_10s, window: 1m, condition: "errors > 5", repeat: 20s}\n`);
    await feedErrorBuckets(h, [9, 0, 0, 0, 0, 0]);
    expect(h.notified().map((n) => [n.state, n.reminder, (n.atMs - T0) / SECOND])).toEqual([
      ['firing', false, 2],
      ['firing', true, 22],
      ['firing', true, 42],
    ]);
  });

  it('restores instance states from the store after a restart and keeps alert_history queryable with SQL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alerts-store-'));
    open.push(async () => rmSync(dir, { recursive: true, force: true }));
    const storeFile = join(dir, 'alerts.duckdb');
    const yaml = `  error_burst: {view: errors_10s, window: 1m, condition: "errors > 5", severity: critical, labels: {team: web}}\n`;
    const first = await harness(yaml, { storeFile });
    await feedErrorBuckets(first, [9]);
    expect(first.notified().map((n) => n.state)).toEqual(['firing']);
    await open.pop()!(); // "restart": close the evaluator and the store

    const second = await harness(yaml, { storeFile });
    expect(second.evaluator.instances().map((i) => [i.alert, i.keyJson, i.state.status, i.state.sinceMs])).toEqual([
      ['error_burst', '{"host":"h1"}', 'firing', T0 + 2 * SECOND],
    ]);
    await feedErrorBuckets(second, [9, 0, 0, 0, 0, 0, 0], 1); // still firing: no second firing notification
    // The last 9 errors (bucket 10 s) leave the 6-bucket window at the bucket of 70 s.
    expect(second.notified().map((n) => [n.state, (n.atMs - T0) / SECOND])).toEqual([['resolved', 72]]);

    const reader = await second.db.connect();
    try {
      const rows = (
        await reader.runAndReadAll(
          `SELECT alert, key->>'host', state, value->>'errors', severity, labels->>'team', since = recorded_at FROM alert_history ORDER BY seq`,
        )
      ).getRowsJS();
      expect(rows).toEqual([
        ['error_burst', 'h1', 'firing', '9', 'critical', 'web', true],
        ['error_burst', 'h1', 'resolved', '0', 'critical', 'web', true],
      ]);
    } finally {
      reader.closeSync();
    }
  });

  it('answers GET /v1/alerts with the rules, the live instances with their current value, and the last notification', async () => {
    const h = await harness(
      [
        `  error_burst: {view: errors_10s, window: 20s, condition: "errors > 5", clear: "errors < 2", for: 10s, severity: critical, labels: {team: web}}`,
        `  busy_page: {view: totals, condition: "views >= 100"}`,
        '',
      ].join('\n'),
    );
    await feedErrorBuckets(h, [9, 9, 3]);
    const body = await alertsResponse(h.evaluator, undefined, {});
    expect(body.evaluatedAt).toBe(new Date(T0 + 22 * SECOND).toISOString());
    expect(body.rules.map((r) => [r.name, r.view, r.windowMs, r.forMs, r.counts])).toEqual([
      ['error_burst', 'errors_10s', 20 * SECOND, 10 * SECOND, { pending: 0, firing: 1, resolved: 0 }],
      ['busy_page', 'totals', null, 0, { pending: 0, firing: 0, resolved: 0 }],
    ]);
    expect(body.instances).toEqual([
      {
        alert: 'error_burst',
        key: { host: 'h1' },
        state: 'firing',
        since: new Date(T0 + 12 * SECOND).toISOString(),
        value: { errors: 12 }, // the buckets of 10 s and 20 s: 9 + 3, still above clear
        window: { start: new Date(T0).toISOString(), end: new Date(T0 + 20 * SECOND).toISOString() },
        lastNotification: { id: expect.stringMatching(/^error_burst:/), state: 'firing', reminder: false, at: new Date(T0 + 12 * SECOND).toISOString() },
      },
    ]);
    expect((await alertsResponse(h.evaluator, undefined, { state: 'pending' })).instances).toEqual([]);
    expect((await alertsResponse(h.evaluator, undefined, { alert: 'busy_page' })).rules.map((r) => r.name)).toEqual(['busy_page']);
  });

  it('joins evaluations requested while one is waiting, instead of queueing them', async () => {
    const h = await harness(`  error_burst: {view: errors_10s, condition: "errors > 5"}\n`);
    await h.feeder.toRealtime([{ ts: T0 + SECOND, host: 'h1', errors: 9 }]);
    const first = h.evaluator.evaluate(T0 + 2 * SECOND);
    const second = h.evaluator.evaluate(T0 + 3 * SECOND);
    expect(second).toBe(first);
    expect((await first).atMs).toBe(T0 + 3 * SECOND); // one evaluation, at the later time
    const third = h.evaluator.evaluate(T0 + 4 * SECOND);
    expect(third).not.toBe(first);
    expect((await third).atMs).toBe(T0 + 4 * SECOND);
    expect(h.notified()).toHaveLength(1);
  });
});
