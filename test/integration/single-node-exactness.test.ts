import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { LambdaNode, ALL_ROLES } from '../../cli/node/lambda-node.ts';

/**
 * The whole single-node pipeline, in process: events POSTed (with late timestamps and bad lines)
 * while batch versions are recomputed and swapped in every 2 s; every view read over HTTP must
 * equal a plain JS computation over the accepted events, exactly, whenever it is read, also
 * while a swap is happening.
 */
const BASE_MS = Date.UTC(2026, 10, 21, 9, 0, 0);
const PAGES = ['/', '/cart', '/checkout'];
const COUNTRIES = ['DE', 'US', 'FR', 'JP'];

interface Event {
  ts: number;
  user_id: string;
  page: string;
  country: string;
  latency_ms: number;
  amount: number | null;
}

function configYaml(dir: string): string {
  return `
source:
  timestamp: ts
  schema: {ts: TIMESTAMP, user_id: VARCHAR, page: VARCHAR, country: VARCHAR, latency_ms: DOUBLE, amount: DOUBLE}
storage: {dir: ${JSON.stringify(dir)}}
speed: {interval: 200ms, blockSize: 100}
batch: {schedule: "*/2 * * * * *"}
serving: {port: 0}
views:
  page_traffic:
    window: 1 minute
    dimensions: [page, country]
    filter: "latency_ms >= 0"
    measures:
      views: count(*)
      revenue: sum(amount)
      avg_latency: avg(latency_ms)
      max_latency: max(latency_ms)
      users: approx_count_distinct(user_id)
  revenue_by_country:
    window: none
    dimensions: [country]
    measures:
      revenue: sum(amount)
      orders: count(amount)
`;
}

/** Deterministic pseudo-random events; some late (up to 10 minutes back), some with latency < 0. */
function makeEvents(from: number, count: number): Event[] {
  return Array.from({ length: count }, (_, j) => {
    const i = from + j;
    const h = (i * 2654435761) >>> 0;
    const late = h % 13 === 0 ? ((h >>> 8) % 600) * 1000 : 0;
    return {
      ts: BASE_MS + i * 37 - late,
      user_id: `u${(h >>> 4) % 500}`,
      page: PAGES[h % PAGES.length]!,
      country: COUNTRIES[(h >>> 3) % COUNTRIES.length]!,
      latency_ms: ((h >>> 5) % 1000) - 20,
      amount: h % 3 === 0 ? (h >>> 7) % 500 : null,
    };
  });
}

/** page_traffic as a JS reduction, keyed like the SQL rows. */
function expectedPageTraffic(events: Event[]): Map<string, [number, number | null, number, number, number]> {
  const groups = new Map<string, { n: number; revenue: number | null; latency: number; max: number; users: Set<string> }>();
  for (const e of events) {
    if (e.latency_ms < 0) continue;
    const key = `${new Date(Math.floor(e.ts / 60_000) * 60_000).toISOString()}|${e.page}|${e.country}`;
    const g = groups.get(key) ?? { n: 0, revenue: null, latency: 0, max: -Infinity, users: new Set<string>() };
    g.n++;
    if (e.amount !== null) g.revenue = (g.revenue ?? 0) + e.amount;
    g.latency += e.latency_ms;
    g.max = Math.max(g.max, e.latency_ms);
    g.users.add(e.user_id);
    groups.set(key, g);
  }
  return new Map([...groups].map(([k, g]) => [k, [g.n, g.revenue, g.latency / g.n, g.max, g.users.size]]));
}

function expectedRevenueByCountry(events: Event[]): Map<string, [number | null, number]> {
  const groups = new Map<string, [number | null, number]>();
  for (const e of events) {
    const g = groups.get(e.country) ?? [null, 0];
    if (e.amount !== null) groups.set(e.country, [(g[0] ?? 0) + e.amount, g[1] + 1]);
    else groups.set(e.country, g);
  }
  return groups;
}

describe('single-node mode, end to end', () => {
  let dir: string;
  let node: LambdaNode;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-single-'));
    node = await LambdaNode.start({ loaded: parseConfig(configYaml(dir)), roles: [...ALL_ROLES], logger: createLogger('test', { level: 'error' }) });
    url = node.url!;
  });

  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function query(sql: string): Promise<unknown[][]> {
    const response = await fetch(`${url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
    const body = (await response.json()) as { rows: unknown[][]; error?: string };
    if (!response.ok) throw new Error(`${response.status}: ${body.error}`);
    return body.rows;
  }

  async function status(): Promise<{ batch: { version: number | null; cuts: Record<string, number> }; lag: { records: number | null }; rejected: { total: number } }> {
    return (await (await fetch(`${url}/v1/status`)).json()) as never;
  }

  /** Waits until realtime state holds every accepted event (the orders count says so). */
  async function caughtUp(accepted: Event[]): Promise<void> {
    const orders = accepted.filter((e) => e.amount !== null).length;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const [[seen]] = (await query('SELECT coalesce(sum(orders), 0)::BIGINT FROM revenue_by_country')) as [[number]];
      if (seen === orders) return;
      if (seen > orders || Date.now() > deadline) throw new Error(`revenue_by_country counts ${seen} orders, expected ${orders}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('answers every view exactly while batches are recomputed and swapped in', async () => {
    const accepted: Event[] = [];
    let sent = 0;
    let badLines = 0;
    const versionsSeen = new Set<number>();
    let comparisons = 0;
    for (let round = 0; round < 8; round++) {
      const events = makeEvents(sent, 400);
      sent += events.length;
      const lines = events.map((e) => JSON.stringify(e));
      // Bad lines in the middle of the body: answered per line, the good lines kept.
      lines.splice(100, 0, '{"ts": "not a time", "page": "/"}', 'not json', `{"ts": ${BASE_MS}, "latency_ms": "slow"}`);
      badLines += 3;
      const response = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: lines.join('\n') });
      const result = (await response.json()) as { accepted: number; rejected: number; errors: { line: number }[] };
      expect(response.status).toBe(200);
      expect(result).toMatchObject({ accepted: 400, rejected: 3 });
      expect(result.errors.map((e) => e.line)).toEqual([101, 102, 103]);
      accepted.push(...events);
      await caughtUp(accepted);

      // Read repeatedly for a while, so that some reads fall during a batch swap.
      const until = Date.now() + 1_500;
      while (Date.now() < until) {
        const s = await status();
        if (s.batch.version !== null) versionsSeen.add(s.batch.version);
        const traffic = await query('SELECT window_start, page, country, views, revenue, avg_latency, max_latency, users FROM page_traffic ORDER BY 1, 2, 3');
        const expected = expectedPageTraffic(accepted);
        expect(traffic.length).toBe(expected.size);
        for (const [ws, page, country, views, revenue, avgLatency, maxLatency, users] of traffic as [string, string, string, number, number | null, number, number, number][]) {
          const want = expected.get(`${new Date(ws).toISOString()}|${page}|${country}`);
          expect(want, `${ws} ${page} ${country}`).toBeDefined();
          expect([views, revenue, maxLatency, users]).toEqual([want![0], want![1], want![3], want![4]]);
          expect(Math.abs(avgLatency - want![2]) / Math.max(1, Math.abs(want![2]))).toBeLessThan(1e-9);
        }
        const byCountry = await query('SELECT country, revenue, orders FROM revenue_by_country ORDER BY 1');
        expect(byCountry).toEqual([...expectedRevenueByCountry(accepted)].sort(([a], [b]) => a.localeCompare(b)).map(([c, [r, o]]) => [c, r, o]));
        comparisons++;
      }
    }
    const final = await status();
    expect(versionsSeen.size).toBeGreaterThanOrEqual(3);
    expect(Math.max(...Object.values(final.batch.cuts))).toBeGreaterThan(0);
    expect(comparisons).toBeGreaterThan(20);
    // Rejected lines were refused at the door, so no record of them reaches the pipeline.
    expect(final.rejected.total).toBe(0);
    expect(badLines).toBe(24);
    const [[events]] = (await query('SELECT count(*) FROM events')) as [[number]];
    expect(events).toBeLessThanOrEqual(accepted.length);
  }, 120_000);
});
