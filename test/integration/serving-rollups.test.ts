import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { makeEvents, query, scenarioConfigYaml, type Event } from './fixtures/exactness-scenario.ts';

/**
 * Rollups end to end on a single node: events (some late by up to 10 minutes) posted in rounds
 * while a batch version is recomputed and swapped in every 2 s; rollups read over POST /v1/query
 * (the locked-down database) and through `lambda query` must equal a plain JS computation over
 * the accepted events, whichever side of a swap they fall on.
 */
const MINUTE = 60_000;
const LAMBDA = new URL('../../cli/lambda.mjs', import.meta.url).pathname;
const run = promisify(execFile);

type Dimension = 'page' | 'country';
interface Rollup {
  readonly sql: string;
  readonly dims: readonly Dimension[];
  readonly lengthMs: number;
  readonly slideMs: number;
}

const ROLLUPS: readonly Rollup[] = [
  { sql: "SELECT * FROM rollup_page_traffic(['page'], '5 minutes')", dims: ['page'], lengthMs: 5 * MINUTE, slideMs: 5 * MINUTE },
  { sql: "SELECT * FROM rollup_page_traffic([], length := '15 minutes', slide := '5 minutes')", dims: [], lengthMs: 15 * MINUTE, slideMs: 5 * MINUTE },
  { sql: "SELECT * FROM rollup_page_traffic(['country'], '3 minutes', '1 minute')", dims: ['country'], lengthMs: 3 * MINUTE, slideMs: MINUTE },
];

/** page_traffic's rollup as a JS reduction: rows of window_start, window_end, dims, then the measures. */
function expectedRollup(events: readonly Event[], r: Rollup): unknown[][] {
  const groups = new Map<string, { key: unknown[]; views: number; revenue: number | null; latency: number; max: number; users: Set<string> }>();
  for (const e of events) {
    if (e.latency_ms < 0) continue;
    for (let s = Math.floor(e.ts / r.slideMs) * r.slideMs; s + r.lengthMs > e.ts; s -= r.slideMs) {
      const key = [new Date(s).toISOString(), new Date(s + r.lengthMs).toISOString(), ...r.dims.map((d) => e[d])];
      const id = JSON.stringify(key);
      const g = groups.get(id) ?? { key, views: 0, revenue: null, latency: 0, max: -Infinity, users: new Set<string>() };
      g.views++;
      if (e.amount !== null) g.revenue = (g.revenue ?? 0) + e.amount;
      g.latency += e.latency_ms;
      g.max = Math.max(g.max, e.latency_ms);
      g.users.add(e.user_id);
      groups.set(id, g);
    }
  }
  return sorted([...groups.values()].map((g) => [...g.key, g.views, g.revenue, g.latency / g.views, g.max, g.users.size]));
}

function sorted(rows: unknown[][]): unknown[][] {
  return rows.sort((a, b) => (JSON.stringify(a.slice(0, 4)) < JSON.stringify(b.slice(0, 4)) ? -1 : 1));
}

/** Rows as the API answers them (window_start and window_end first), sorted like `expectedRollup`. */
function normalized(rows: unknown[][]): unknown[][] {
  return sorted(rows.map((row) => row.map((v, i) => (i < 2 ? new Date(String(v)).toISOString() : v))));
}

function expectSame(actual: unknown[][], expected: unknown[][], label: string): void {
  expect(actual.length, `${label}: rows`).toBe(expected.length);
  actual.forEach((row, i) => {
    const want = expected[i]!;
    // Every column exactly but the average, which DuckDB may add up in another order.
    const avgAt = row.length - 3;
    expect([...row.slice(0, avgAt), ...row.slice(avgAt + 1)], label).toEqual([...want.slice(0, avgAt), ...want.slice(avgAt + 1)]);
    expect(Math.abs((row[avgAt] as number) - (want[avgAt] as number)), `${label}: avg_latency of ${JSON.stringify(want.slice(0, 4))}`).toBeLessThan(1e-9);
  });
}

async function expectRollupsExact(url: string, accepted: readonly Event[]): Promise<void> {
  for (const r of ROLLUPS) expectSame(normalized(await query(url, r.sql)), expectedRollup(accepted, r), `${url}: ${r.sql}`);
  const byCountry = new Map<string, [number | null, number]>();
  for (const e of accepted) {
    const [revenue, orders] = byCountry.get('all') ?? [null, 0];
    byCountry.set('all', e.amount === null ? [revenue, orders] : [(revenue ?? 0) + e.amount, orders + 1]);
  }
  expect(await query(url, 'SELECT * FROM rollup_revenue_by_country([])')).toEqual([byCountry.get('all')]);
  // Over all time per page: distinct users counted once, however many countries and minutes they span.
  const usersByPage = new Map<string, Set<string>>();
  for (const e of accepted) if (e.latency_ms >= 0) usersByPage.set(e.page, (usersByPage.get(e.page) ?? new Set()).add(e.user_id));
  expect(await query(url, "SELECT page, users FROM rollup_page_traffic(['page'], 'all') ORDER BY page")).toEqual(
    [...usersByPage].sort(([a], [b]) => a.localeCompare(b)).map(([page, users]) => [page, users.size]),
  );
}

describe('rollups on a single node, across batch swaps', () => {
  let dir: string;
  let node: LambdaNode;
  let url: string;
  const accepted: Event[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-rollups-'));
    node = await LambdaNode.start({ loaded: parseConfig(scenarioConfigYaml(dir)), roles: [...ALL_ROLES], logger: createLogger('test', { level: 'error' }) });
    url = node.url!;
  });

  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('GET /v1/views names each measure\'s aggregate, the window as the config writes it and the rollup', async () => {
    const { views } = (await (await fetch(`${url}/v1/views`)).json()) as { views: Record<string, unknown>[] };
    const traffic = views.find((v) => v['name'] === 'page_traffic')!;
    expect(traffic).toMatchObject({ window: '1m', windowMs: 60_000, dimensions: ['page', 'country'], rollup: 'rollup_page_traffic' });
    expect(traffic['measures']).toEqual([
      { name: 'views', aggregate: 'count', of: '*' },
      { name: 'revenue', aggregate: 'sum', of: 'amount' },
      { name: 'avg_latency', aggregate: 'avg', of: 'latency_ms' },
      { name: 'max_latency', aggregate: 'max', of: 'latency_ms' },
      { name: 'users', aggregate: 'approx_count_distinct', of: 'user_id' },
    ]);
    expect(views.find((v) => v['name'] === 'revenue_by_country')).toMatchObject({ window: null, windowMs: null, rollup: 'rollup_revenue_by_country' });
  });

  it('equals a reduction over the raw events while batches are swapped in, late events included', async () => {
    const versions = new Set<number>();
    for (let round = 0; round < 5; round++) {
      const events = makeEvents(accepted.length, 300);
      const response = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: events.map((e) => JSON.stringify(e)).join('\n') });
      expect(response.status).toBe(200);
      accepted.push(...events);
      const orders = accepted.filter((e) => e.amount !== null).length;
      const deadline = Date.now() + 30_000;
      while (((await query(url, 'SELECT coalesce(sum(orders), 0)::BIGINT FROM revenue_by_country')) as [[number]])[0][0] !== orders) {
        if (Date.now() > deadline) throw new Error('the speed layer did not catch up');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      // For 1.2 s, batch swaps landing meanwhile, and at least 3 times however slow the machine.
      const until = Date.now() + 1_200;
      for (let compared = 0; compared < 3 || Date.now() < until; compared++) {
        const status = (await (await fetch(`${url}/v1/status`)).json()) as { batch: { version: number | null } };
        if (status.batch.version !== null) versions.add(status.batch.version);
        await expectRollupsExact(url, accepted);
      }
    }
    expect(versions.size).toBeGreaterThanOrEqual(2);
    expect(accepted.some((e, i) => i > 0 && e.ts < accepted[i - 1]!.ts - MINUTE)).toBe(true);
  }, 120_000);

  it('answers `lambda query` with the same rows', async () => {
    const r = ROLLUPS[0]!;
    const { stdout } = await run(process.execPath, [LAMBDA, 'query', r.sql, '--url', url, '--format', 'json'], { env: { ...process.env, LOG_LEVEL: 'warn' } });
    expectSame(normalized(JSON.parse(stdout).rows), expectedRollup(accepted, r), 'lambda query');
  }, 30_000);

  it('answers a bad rollup with a 400 that says what to change', async () => {
    const response = await fetch(`${url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: "SELECT * FROM rollup_page_traffic(['region'])" }) });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('rollup_page_traffic: unknown dimension [region]; page_traffic has the dimensions page, country');
  });
});
