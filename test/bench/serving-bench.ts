/**
 * `npm run bench -- serving`: the serving layer's query path.
 *
 * - serving.dashboard.p50 / p99: the dashboard query (last hour of the 1-minute page_traffic view
 *   over 1k keys) on the served view — materialized (serving-layer/engine/materialized-views.ts)
 *   from batch state and realtime blocks written micro-batch by micro-batch — through the
 *   QueryRunner; baseline: the same query on a plain DuckDB table holding the same result,
 *   computed on read as finalize(merge(batch ∪ realtime)), through the same runner.
 * - serving.materialize.micro_batch: the upkeep of the materialized views (both views of the
 *   fixture) in a micro-batch of 10k events, p50; baseline: writing that micro-batch's realtime
 *   state.
 * - serving.materialize.rebuild: rebuilding them at a batch handoff; baseline: one read of the
 *   whole view merged on read.
 * - serving.events.last5m.p50 / p99: a query over the last 5 minutes of `events`, 10M archived
 *   events (EVENTS_BENCH_ARCHIVED overrides) and 200k in the speed layer's tail; baseline: the
 *   same rows in a plain DuckDB table (events-query.ts).
 * - serving.concurrent.qps / errors: 50 concurrent HTTP clients for 30 s (BENCH_SECONDS
 *   overrides) sending the dashboard query to the real HTTP server; baseline for qps: one client.
 */
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { createMetricsRegistry } from '../../core/observability/metrics.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import { batchTable, mergedViewSql, realtimeTable } from '../../core/views/view-tables.ts';
import { MaterializedViews } from '../../serving-layer/engine/materialized-views.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { createHttpServer } from '../../serving-layer/http/http-server.ts';
import { QueryRunner } from '../../serving-layer/query/query-runner.ts';
import { percentile, printBenchLine } from './bench-report.ts';
import { benchEventsQuery } from './events-query.ts';

const PAGES = 50;
const COUNTRIES = 20;
const EVENTS_PER_KEY_MINUTE = 10;
const BLOCK = 10_000;
const MICRO_BATCH = 10_000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);

const loaded = parseConfig(readFileSync(new URL('../fixtures/foundation.yaml', import.meta.url), 'utf8'));
const database = await ServingDatabase.create(loaded);
const admin = database.adminConnection;
const bound = database.view('page_traffic')!;
const view = bound.view;
const nowMinute = Math.floor(Date.now() / 60_000) * 60_000;

// One hour of events over 1k keys: the first 55 minutes in the batch state, the rest written to
// realtime blocks micro-batch by micro-batch, as the two layers would leave them.
await admin.run(`CREATE TEMP TABLE ev AS
  SELECT make_timestamp((${nowMinute - 3_600_000} + (i // ${PAGES * COUNTRIES * EVENTS_PER_KEY_MINUTE}) * 60000 + i % 60000) * 1000) AS ts,
         'u' || (i % 50000) AS user_id, '/p' || (i % ${PAGES}) AS page, 'c' || ((i // ${PAGES}) % ${COUNTRIES}) AS country,
         (i % 997)::DOUBLE AS latency_ms, (i % 50)::DOUBLE AS amount, 0 AS _partition, i AS _offset
  FROM range(${60 * PAGES * COUNTRIES * EVENTS_PER_KEY_MINUTE}) t(i)`);
const total = 60 * PAGES * COUNTRIES * EVENTS_PER_KEY_MINUTE;
const cut = Math.floor((55 * PAGES * COUNTRIES * EVENTS_PER_KEY_MINUTE) / BLOCK) * BLOCK;
for (const { view: v } of database.bound) {
  await admin.run(`INSERT INTO ${quoteIdent(batchTable(v.definition.name))} ${v.partialSql(`(SELECT * FROM ev WHERE _offset < ${cut})`)}`);
}
const materialized = await MaterializedViews.create(admin, database.bound);
const writeMs: number[] = [];
const upkeepMs: number[] = [];
for (let from = cut; from < total; from += MICRO_BATCH) {
  // A micro-batch's decoded events sit in a table of their own, as the speed layer's do.
  await admin.run(`CREATE OR REPLACE TEMP TABLE micro_batch AS SELECT * FROM ev WHERE _offset >= ${from} AND _offset < ${from + MICRO_BATCH}`);
  const events = 'temp.main.micro_batch';
  await admin.run('BEGIN TRANSACTION');
  const started = performance.now();
  for (const { view: v } of database.bound) {
    const partial = v.partialSql(events, [{ name: '_partition' }, { name: '_block', sql: `_offset // ${BLOCK}` }]);
    await admin.run(`INSERT INTO ${quoteIdent(realtimeTable(v.definition.name))} BY NAME ${partial}`);
  }
  const written = performance.now();
  await materialized.microBatchInTransaction(admin, events);
  upkeepMs.push(performance.now() - written);
  writeMs.push(written - started);
  await admin.run('COMMIT');
}
let started = performance.now();
await admin.run(`CREATE TABLE page_traffic_plain AS ${mergedViewSql(bound)}`);
const mergedReadMs = performance.now() - started;
await admin.run('DROP TABLE ev');
await admin.run('DROP TABLE temp.main.micro_batch');

const dashboard = (table: string) => `SELECT window_start, page, sum(views) AS views, sum(revenue) AS revenue, max(max_latency) AS max_latency
  FROM ${table} WHERE window_start >= TIMESTAMP '${new Date(nowMinute - 3_600_000).toISOString().replace('T', ' ').slice(0, 19)}'
  GROUP BY ALL ORDER BY 1, 2`;
const runner = new QueryRunner(database.instance, { timeoutMs: 30_000, maxRows: 1_000_000 });

async function latencies(sql: string, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await runner.run(sql);
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

// Same rows either way, or the comparison means nothing.
const [merged, plain] = [await runner.run(dashboard('page_traffic')), await runner.run(dashboard('page_traffic_plain'))];
if (JSON.stringify(merged.rows) !== JSON.stringify(plain.rows)) throw new Error('the merged view and the plain table disagree');
await latencies(dashboard('page_traffic'), 5);
const ours: number[] = [];
const base: number[] = [];
for (let round = 0; round < 30; round++) {
  // Interleaved, so that load from elsewhere hits both alike.
  ours.push(...(await latencies(dashboard('page_traffic'), 10)));
  base.push(...(await latencies(dashboard('page_traffic_plain'), 10)));
}
printBenchLine({ bench: 'serving.dashboard.p50', value: percentile(ours, 50), unit: 'ms', baseline: 'plain DuckDB table, same query, p50', baselineValue: percentile(base, 50) });
printBenchLine({ bench: 'serving.dashboard.p99', value: percentile(ours, 99), unit: 'ms', baseline: 'plain DuckDB table, same query, p99', baselineValue: percentile(base, 99) });
printBenchLine({
  bench: 'serving.materialize.micro_batch', value: percentile(upkeepMs, 50), unit: 'ms',
  baseline: `writing the realtime state of the same ${MICRO_BATCH} events, p50`, baselineValue: percentile(writeMs, 50),
});
await admin.run('BEGIN TRANSACTION');
started = performance.now();
await materialized.batchAppliedInTransaction(admin);
const rebuildMs = performance.now() - started;
await admin.run('COMMIT');
printBenchLine({ bench: 'serving.materialize.rebuild', value: rebuildMs, unit: 'ms', baseline: 'one read of the whole view merged on read', baselineValue: mergedReadMs });
await benchEventsQuery({ loaded, admin, runner, archived: Number(process.env.EVENTS_BENCH_ARCHIVED ?? 10_000_000), tailRows: 200_000 });

const logger = createLogger('bench', { level: 'error' });
const http = createHttpServer({
  port: 0, logger, metrics: createMetricsRegistry({ defaultMetrics: false }),
  query: (sql, options) => runner.run(sql, options),
  views: async () => [], status: async () => ({}) as never,
});
const { url } = await http.start();

async function clients(count: number, seconds: number): Promise<{ ok: number; errors: number }> {
  const until = performance.now() + seconds * 1000;
  let ok = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      while (performance.now() < until) {
        const response = await fetch(`${url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: dashboard('page_traffic') }) }).catch(() => undefined);
        if (response?.ok) ok++;
        else errors++;
        await response?.arrayBuffer();
      }
    }),
  );
  return { ok, errors };
}

const single = await clients(1, Math.max(5, SECONDS / 3));
const concurrent = await clients(50, SECONDS);
printBenchLine({ bench: 'serving.concurrent.qps', value: concurrent.ok / SECONDS, unit: 'queries/s', baseline: '1 client, same query', baselineValue: single.ok / Math.max(5, SECONDS / 3) });
printBenchLine({ bench: 'serving.concurrent.errors', value: concurrent.errors, unit: 'errors', baseline: 'target', baselineValue: 0 });
await http.stop();
runner.close();
database.close();
