import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type LoadedConfig } from '../config/load-config.ts';
import { seededRandom } from '../random/seeded-random.ts';
import { ViewFeeder, type TestEvent } from '../../test/support/view-feeder.ts';
import { bindViews, type BoundView } from './bind-views.ts';
import { createRollupMacroSql, createStateViewSql } from './view-rollup.ts';
import { createBatchTableSql, createRealtimeTableSql, createServingViewSql } from './view-tables.ts';

/**
 * Rollups against an oracle written here in plain JS over the raw events: a window [s, s + length)
 * with s a multiple of the slide holds the events whose timestamp lies in it; counts, sums, min,
 * max, averages (sum / count of the non-null values) and distinct counts (a Set) per window and
 * kept dimensions. Values are integers, so every sum is exact in any order and compared exactly.
 */
const MINUTE = 60_000;
const BASE_MS = Date.UTC(2026, 10, 21, 9, 0, 0);
const BLOCK = 25;
const CONFIG = `
source: {timestamp: ts, schema: {ts: TIMESTAMP, page: VARCHAR, country: VARCHAR, latency: BIGINT, user_id: VARCHAR}}
views:
  traffic:
    window: 1 minute
    dimensions: [page, country]
    filter: "latency IS NULL OR latency >= 0"
    measures: {views: count(*), timed: count(latency), total: sum(latency), fastest: min(latency), slowest: max(latency), mean: avg(latency), users: approx_count_distinct(user_id)}
  by_country: {dimensions: [country], measures: {views: count(*), mean: avg(latency), users: approx_count_distinct(user_id)}}
`;

interface Event extends TestEvent {
  readonly ts: number;
  readonly page: string | null;
  readonly country: string | null;
  readonly latency: number | null;
  readonly user_id: string | null;
}

type Dimension = 'page' | 'country';
type Row = Record<string, string | number | null>;

/** Random events over 40 minutes, a tenth of them late by up to half an hour, some NULLs. */
function makeEvents(seed: number, count: number, firstOffset: number): Event[] {
  const random = seededRandom(seed);
  const pick = <T,>(values: readonly T[]) => values[Math.floor(random() * values.length)]!;
  return Array.from({ length: count }, (_, i) => {
    const late = random() < 0.1 ? Math.floor(random() * 30 * MINUTE) : 0;
    return {
      ts: BASE_MS + Math.floor(random() * 40 * MINUTE) - late,
      page: pick(['/', '/cart', '/checkout', null]),
      country: pick(['DE', 'US', 'FR', null]),
      latency: random() < 0.1 ? null : Math.floor(random() * 1_000) - 50,
      user_id: random() < 0.05 ? null : `u${Math.floor(random() * 40)}`,
      partition: i % 2,
      offset: firstOffset + Math.floor(i / 2),
    };
  });
}

/** The oracle: the rollup of `events` by `dims` into windows of `lengthMs` every `slideMs` (null: no windows). */
function oracle(events: readonly Event[], dims: readonly Dimension[], windowing: { lengthMs: number; slideMs: number } | null, filtered: boolean): Row[] {
  const groups = new Map<string, { key: Row; views: number; latencies: number[]; users: Set<string> }>();
  for (const e of events) {
    if (filtered && e.latency !== null && e.latency < 0) continue;
    const starts: (number | null)[] = [];
    if (windowing === null) starts.push(null);
    else for (let s = Math.floor(e.ts / windowing.slideMs) * windowing.slideMs; s + windowing.lengthMs > e.ts; s -= windowing.slideMs) starts.push(s);
    for (const start of starts) {
      const key: Row = {};
      if (start !== null) Object.assign(key, { window_start: start, window_end: start + windowing!.lengthMs });
      for (const d of dims) key[d] = e[d];
      const id = JSON.stringify(key);
      const g = groups.get(id) ?? { key, views: 0, latencies: [], users: new Set<string>() };
      g.views++;
      if (e.latency !== null) g.latencies.push(e.latency);
      if (e.user_id !== null) g.users.add(e.user_id);
      groups.set(id, g);
    }
  }
  return sortRows(
    [...groups.values()].map(({ key, views, latencies, users }) => {
      const total = latencies.length === 0 ? null : latencies.reduce((a, b) => a + b, 0);
      const measures: Row = filtered
        ? {
            views,
            timed: latencies.length,
            total,
            fastest: latencies.length === 0 ? null : Math.min(...latencies),
            slowest: latencies.length === 0 ? null : Math.max(...latencies),
            mean: total === null ? null : total / latencies.length,
            users: users.size,
          }
        : { views, mean: total === null ? null : total / latencies.length, users: users.size };
      return { ...key, ...measures };
    }),
  );
}

function sortRows(rows: Row[]): Row[] {
  return rows.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

function plain(value: unknown): string | number | null {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'bigint') return Number(value);
  return value as string | number | null;
}

async function rows(connection: DuckDBConnection, sql: string): Promise<Row[]> {
  const reader = await connection.runAndReadAll(sql);
  return sortRows(reader.getRowObjectsJS().map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)]))));
}

/** The serving database's view objects, built with the core functions alone. */
async function servingTables(connection: DuckDBConnection, loaded: LoadedConfig): Promise<BoundView[]> {
  const bound = await bindViews(loaded, connection);
  for (const view of bound) {
    for (const sql of [createBatchTableSql(view), createRealtimeTableSql(view), createServingViewSql(view), createStateViewSql(view), createRollupMacroSql(view)]) {
      await connection.run(sql);
    }
  }
  return bound;
}

const TRAFFIC_ROLLUPS: { call: string; dims: Dimension[]; lengthMs: number; slideMs: number }[] = [
  { call: 'rollup_traffic()', dims: ['page', 'country'], lengthMs: MINUTE, slideMs: MINUTE },
  { call: "rollup_traffic(['page'])", dims: ['page'], lengthMs: MINUTE, slideMs: MINUTE },
  { call: "rollup_traffic(['country', 'page'], '5 minutes')", dims: ['page', 'country'], lengthMs: 5 * MINUTE, slideMs: 5 * MINUTE },
  { call: 'rollup_traffic([], INTERVAL 7 MINUTE)', dims: [], lengthMs: 7 * MINUTE, slideMs: 7 * MINUTE },
  { call: "rollup_traffic(['country'], length := '15 minutes', slide := '5 minutes')", dims: ['country'], lengthMs: 15 * MINUTE, slideMs: 5 * MINUTE },
  { call: "rollup_traffic(['page'], length := '5 minutes', slide := '2 minutes')", dims: ['page'], lengthMs: 5 * MINUTE, slideMs: 2 * MINUTE },
  { call: "rollup_traffic(dimensions := [], length := '3 minutes', slide := '1 minute')", dims: [], lengthMs: 3 * MINUTE, slideMs: MINUTE },
  { call: "rollup_traffic(['page', 'country'], '1 hour', '1 minute')", dims: ['page', 'country'], lengthMs: 60 * MINUTE, slideMs: MINUTE },
];

describe('rollups of a view, against a plain reduction over the raw events', () => {
  let instance: DuckDBInstance;
  let c: DuckDBConnection;
  let feeder: ViewFeeder;
  const events: Event[] = [];

  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    c = await instance.connect();
    const loaded = parseConfig(CONFIG);
    feeder = new ViewFeeder(c, loaded.schema, await servingTables(c, loaded), BLOCK);
  });

  afterAll(() => {
    c?.closeSync();
    instance?.closeSync();
  });

  async function expectAllRollupsExact(): Promise<void> {
    for (const r of TRAFFIC_ROLLUPS) {
      expect(await rows(c, `SELECT * FROM ${r.call}`), r.call).toEqual(oracle(events, r.dims, r, true));
    }
    expect(await rows(c, 'SELECT * FROM rollup_by_country()')).toEqual(oracle(events, ['country'], null, false));
    expect(await rows(c, 'SELECT * FROM rollup_by_country([])')).toEqual(oracle(events, [], null, false));
  }

  it('is exact for every measure and window as state moves from realtime blocks to the batch', async () => {
    await expectAllRollupsExact(); // no state at all: no rows
    for (let round = 0; round < 4; round++) {
      const batch = makeEvents(round + 1, 300, round * 150);
      events.push(...batch);
      await feeder.toRealtime(batch.slice(0, 150));
      await feeder.toRealtime(batch.slice(150));
      await expectAllRollupsExact();
      // A handoff: the blocks a batch run covered leave realtime state for the batch table.
      await feeder.handOff(Math.floor((round * 150 + 100) / BLOCK));
      await expectAllRollupsExact();
    }
    const [[batchRows, realtimeRows]] = (await c.runAndReadAll('SELECT (SELECT count(*) FROM batch__traffic), (SELECT count(*) FROM realtime__traffic)')).getRowsJS() as [[bigint, bigint]];
    expect(batchRows).toBeGreaterThan(0n);
    expect(realtimeRows).toBeGreaterThan(0n);
  });

  it('with the view\'s own dimensions and window, equals the view', async () => {
    expect(await rows(c, 'SELECT * EXCLUDE (window_end) FROM rollup_traffic()')).toEqual(await rows(c, 'SELECT * FROM traffic'));
    expect(await rows(c, 'SELECT * FROM rollup_by_country()')).toEqual(await rows(c, 'SELECT * FROM by_country'));
  });

  it('keeps the windows since <= window_start < until, each whole, including sliding windows at the edges', async () => {
    const since = BASE_MS + 10 * MINUTE;
    const until = BASE_MS + 20 * MINUTE;
    const inRange = (rows: Row[]) => rows.filter((r) => (r['window_start'] as number) >= since && (r['window_start'] as number) < until);
    const sql = (range: string) => `SELECT * FROM rollup_traffic(['page'], length := '5 minutes', slide := '1 minute'${range})`;
    const expected = inRange(oracle(events, ['page'], { lengthMs: 5 * MINUTE, slideMs: MINUTE }, true));
    expect(expected.length).toBeGreaterThan(10);
    const ts = (ms: number) => `TIMESTAMP '${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}'`;
    expect(await rows(c, sql(`, since := ${ts(since)}, until := ${ts(until)}`))).toEqual(expected);
    expect(await rows(c, `${sql(`, since := '${new Date(since).toISOString()}'`)} WHERE window_start < ${ts(until)}`)).toEqual(expected);
    // The oldest and newest windows reach past the data: they hold the buckets they have, no more.
    const all = await rows(c, sql(''));
    const first = Math.min(...events.filter((e) => e.latency === null || e.latency >= 0).map((e) => e.ts));
    expect(Math.min(...all.map((r) => r['window_start'] as number))).toBe(Math.floor(first / MINUTE) * MINUTE - 4 * MINUTE);
  });

  it("with length 'all', makes one window per kept key over since..until, reported as [since, until)", async () => {
    const since = BASE_MS + 7 * MINUTE;
    const until = BASE_MS + 31 * MINUTE;
    const ts = (ms: number) => `TIMESTAMP '${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}'`;
    const bucketIn = (e: Event, from: number, to: number) => Math.floor(e.ts / MINUTE) * MINUTE >= from && Math.floor(e.ts / MINUTE) * MINUTE < to;
    const whole = (from: number | null, to: number | null) =>
      oracle(events.filter((e) => bucketIn(e, from ?? -Infinity, to ?? Infinity)), ['page'], null, true).map((r) => ({ window_start: from, window_end: to, ...r }));
    expect(await rows(c, `SELECT * FROM rollup_traffic(['page'], 'all', since := ${ts(since)}, until := ${ts(until)})`)).toEqual(sortRows(whole(since, until)));
    expect(await rows(c, `SELECT * FROM rollup_traffic(['page'], length := 'all', until := ${ts(until)})`)).toEqual(sortRows(whole(null, until)));
    expect(await rows(c, "SELECT * FROM rollup_traffic(['page'], length := 'all')")).toEqual(sortRows(whole(null, null)));
    // What the issue's user wrote, summing the view's rows, double-counts users seen in two countries.
    const [[summed]] = (await c.runAndReadAll("SELECT sum(users)::BIGINT FROM traffic WHERE page = '/cart'")).getRowsJS() as [[bigint]];
    const [[rolled]] = (await c.runAndReadAll("SELECT users FROM rollup_traffic(['page'], 'all') WHERE page = '/cart'")).getRowsJS() as [[bigint]];
    expect(Number(rolled)).toBe(new Set(events.filter((e) => e.page === '/cart' && e.user_id !== null && (e.latency === null || e.latency >= 0)).map((e) => e.user_id)).size);
    expect(summed).toBeGreaterThan(rolled);
  });

  it('exposes the state it merges as state__<view>: batch and realtime rows, without block keys', async () => {
    const columns = (await c.runAndReadAll('DESCRIBE state__traffic')).getRowsJS().map((r) => r[0]);
    expect(columns).toEqual(['window_start', 'page', 'country', 'views__count', 'timed__count', 'total__sum', 'fastest__min', 'slowest__max', 'mean__sum', 'mean__count', 'users__sketch']);
    const [[stateViews]] = (await c.runAndReadAll('SELECT sum(views__count)::BIGINT FROM state__traffic')).getRowsJS() as [[bigint]];
    expect(Number(stateViews)).toBe(events.filter((e) => e.latency === null || e.latency >= 0).length);
  });

  it.each([
    ["rollup_traffic(['page', 'nope'])", "rollup_traffic: unknown dimension [nope]; traffic has the dimensions page, country"],
    ["rollup_traffic(length := '90 seconds')", "rollup_traffic: length must be a whole number of traffic's window (1m) or 'all', such as '5 minutes'; got 90 seconds"],
    ['rollup_traffic(length := INTERVAL 1 MONTH)', "rollup_traffic: length must be a whole number of traffic's window (1m) or 'all', such as '5 minutes'; got 1 month"],
    ["rollup_traffic(length := '0 minutes')", "rollup_traffic: length must be a whole number of traffic's window (1m) or 'all'"],
    ["rollup_traffic(length := 'soon')", "rollup_traffic: length must be a whole number of traffic's window (1m) or 'all', such as '5 minutes'; got soon"],
    ["rollup_traffic(length := '5 minutes', slide := '30 seconds')", "rollup_traffic: slide must be a whole number of traffic's window (1m), such as '5 minutes'; got 30 seconds"],
    ["rollup_traffic(length := 'all', slide := '1 minute')", "rollup_traffic: length 'all' makes one window over since..until; it takes no slide"],
    ["rollup_traffic(length := '2 minutes', slide := '3 minutes')", 'rollup_traffic: slide must not be longer than length (windows would skip buckets); got slide 3 minutes and length 2 minutes'],
    ["rollup_by_country(['page'])", 'rollup_by_country: unknown dimension [page]; by_country has the dimensions country'],
  ])('refuses %s with a message saying what to change, with or without state', async (call, message) => {
    await expect(c.run(`SELECT * FROM ${call}`)).rejects.toThrow(message);
    await feeder.clear();
    try {
      await expect(c.run(`SELECT * FROM ${call}`)).rejects.toThrow(message);
    } finally {
      await feeder.toRealtime(events);
    }
  });
});

describe('distinct counts past the sketch size', () => {
  it('merge to the sketch of all the values at once, not to a sum of estimates', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const c = await instance.connect();
    try {
      const loaded = parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, shard: VARCHAR, user_id: VARCHAR}}
views: {users: {window: 1 minute, dimensions: [shard], measures: {users: approx_count_distinct(user_id)}}}
`);
      const [bound] = await servingTables(c, loaded);
      // 60,000 users over 10 minutes and 4 shards, each seen twice; partial state per shard and minute.
      await c.run(`CREATE TABLE ev AS SELECT TIMESTAMP '2026-11-21 09:00:00' + to_milliseconds((i % 600) * 1000) AS ts, 's' || (i % 4) AS shard,
          'u' || (i // 2) AS user_id, (i % 3)::INTEGER AS _partition, i::BIGINT AS _offset FROM range(120000) t(i)`);
      await c.run(`INSERT INTO batch__users BY NAME ${bound!.view.partialSql('(SELECT * FROM ev WHERE _offset < 50000)')}`);
      await c.run(`INSERT INTO realtime__users BY NAME ${bound!.view.partialSql('(SELECT * FROM ev WHERE _offset >= 50000)', [{ name: '_partition' }, { name: '_block', sql: '_offset // 1000' }])}`);
      // The oracle: the KMV estimate (K = 16,384) of all the distinct hashes, written from its definition.
      const [[direct]] = (
        await c.runAndReadAll(`WITH h AS (SELECT DISTINCT hash(user_id) AS h FROM ev)
          SELECT round(16383 / ((SELECT h FROM h ORDER BY h LIMIT 1 OFFSET 16383)::DOUBLE / 18446744073709551616.0))::BIGINT`)
      ).getRowsJS() as [[bigint]];
      const [[rolled]] = (await c.runAndReadAll(`SELECT users FROM rollup_users([], '10 minutes')`)).getRowsJS() as [[bigint]];
      expect(rolled).toBe(direct);
      expect(Math.abs(Number(rolled) - 60_000) / 60_000).toBeLessThan(0.03);
      // What the view's rows cannot give: their sum counts each user once per shard and minute.
      const [[summed]] = (await c.runAndReadAll('SELECT sum(users)::BIGINT FROM users')).getRowsJS() as [[bigint]];
      expect(Number(summed)).toBeGreaterThan(100_000);
    } finally {
      c.closeSync();
      instance.closeSync();
    }
  });
});

describe('dimensions named like the rollup parameters', () => {
  it('are dimensions like any other (a column named like a macro parameter is easily read as the parameter)', async () => {
    const instance = await DuckDBInstance.create(':memory:');
    const c = await instance.connect();
    try {
      const loaded = parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, length: VARCHAR, slide: VARCHAR, since: VARCHAR, until: VARCHAR, dimensions: VARCHAR}}
views:
  odd: {window: 1 minute, dimensions: [length, slide, since, until, dimensions], measures: {n: count(*), longest: max(length)}}
  odd_totals: {dimensions: [length, dimensions], measures: {n: count(*)}}
`);
      const feeder = new ViewFeeder(c, loaded.schema, await servingTables(c, loaded), 10);
      const names = ['length', 'slide', 'since', 'until', 'dimensions'] as const;
      const events = Array.from({ length: 60 }, (_, i) => ({
        ts: BASE_MS + i * 20_000,
        ...(Object.fromEntries(names.map((n, j) => [n, `${n}${(i >> j) % 2}`])) as Record<(typeof names)[number], string>),
        offset: i,
      }));
      await feeder.toRealtime(events);
      await feeder.handOff(3);
      for (const n of names) {
        const expected = new Map<string, number>();
        for (const e of events) {
          const key = `${Math.floor(e.ts / (5 * MINUTE)) * 5 * MINUTE}|${e[n]}`;
          expected.set(key, (expected.get(key) ?? 0) + 1);
        }
        const actual = await rows(c, `SELECT window_start, ${n}, n FROM rollup_odd(['${n}'], '5 minutes', since := NULL)`);
        expect(actual.map((r) => [`${r['window_start']}|${r[n]}`, r['n']]).sort(), n).toEqual([...expected].sort());
      }
      const zeros = events.filter((e) => e.dimensions === 'dimensions0').length;
      expect(await rows(c, "SELECT * FROM rollup_odd_totals(['dimensions'])")).toEqual([
        { dimensions: 'dimensions0', n: zeros },
        { dimensions: 'dimensions1', n: events.length - zeros },
      ]);
      expect(await rows(c, 'SELECT * EXCLUDE (window_end) FROM rollup_odd()')).toEqual(await rows(c, 'SELECT * FROM odd'));
    } finally {
      c.closeSync();
      instance.closeSync();
    }
  });
});
