import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { BatchRunProgress } from '../../batch-layer/batch-run-progress.ts';
import { recompute, type RecomputeInput } from '../../batch-layer/recompute.ts';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import type { BatchProgress } from '../../core/batch/batch-progress.ts';
import { validateConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { LocalBatchProgressStore } from '../../core/coordination/local-batch-progress-store.ts';
import { installSqlMacros } from '../../core/duckdb/sql-macros.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { writeMasterDataset } from '../support/bench-master-dataset.ts';
import { printBenchLine } from './bench-report.ts';

/**
 * `npm run bench -- batch-backfill`: what the batch master's run at once costs when a view is added
 * (issue 16). History: BACKFILL_BENCH_EVENTS events (default 10M) of test/fixtures/foundation.yaml's
 * schema; version 1 holds foundation's two views over it; then 0.1% more events arrive (late ones,
 * into the same windows) and the view `users_by_country` is added.
 *
 *   backfill   the run at once: the new view over the whole history, the two others extended from
 *              version 1 with the new events (extendUnchanged), with its progress record kept up;
 *              baseline: the batch recompute of the new view alone over the same history.
 *   full       for comparison: the same run recomputing all three views (what a scheduled run does).
 *
 * Best of three interleaved runs each (the machine is shared: the best is the least disturbed).
 * Also prints, on stderr, the new view's progress fractions as sampled during one backfill run.
 */
const EVENTS = Number(process.env.BACKFILL_BENCH_EVENTS ?? 10_000_000);
const TOPIC = 'clicks';
const logger = createLogger('batch-backfill-bench', { level: 'warn' });

const NEW_VIEW = {
  window: '1 minute',
  dimensions: ['country'],
  measures: { users: 'approx_count_distinct(user_id)', events: 'count(*)', avg_latency: 'avg(latency_ms)' },
};

function config(dir: string, withNewView: boolean): LoadedConfig {
  const raw = parseYaml(readFileSync(new URL('../fixtures/foundation.yaml', import.meta.url), 'utf8')) as Record<string, any>;
  raw['storage'] = { dir };
  if (withNewView) raw['views'] = { ...raw['views'], users_by_country: NEW_VIEW };
  return validateConfig(raw);
}

const dir = mkdtempSync(join(tmpdir(), 'batch-backfill-bench-'));
const layout = new StorageLayout(dir);
const instance = await DuckDBInstance.create(':memory:');
const connection = await instance.connect();
try {
  await installSqlMacros(connection);
  await connection.run('SET enable_progress_bar = true');
  await connection.run('SET enable_progress_bar_print = false');
  const before = config(dir, false);
  const after = config(dir, true);
  const newView = after.views.filter((v) => v.definition.name === 'users_by_country');
  // A few offsets more than whole blocks, so each partition's cut falls inside a segment.
  await writeMasterDataset(connection, layout, TOPIC, EVENTS + 4 * 1_234);
  let version = 0;
  const run = (loaded: LoadedConfig, views: RecomputeInput['views'], extra: Partial<RecomputeInput> = {}): Promise<BatchManifest> =>
    recompute({ connection, layout, topic: TOPIC, schema: loaded.schema, views, blockSize: loaded.config.speed.blockSize, version: ++version, producedBy: 'bench', ...extra });
  const v1 = await run(before, before.views);
  const perPartition = Math.floor((EVENTS + 4 * 1_234) / 4);
  await writeMasterDataset(connection, layout, TOPIC, EVENTS / 1_000, perPartition);
  process.stderr.write(`history: ${v1.eventsRead} events in version 1, then ${EVENTS / 1_000} more\n`);

  const timed = async (what: () => Promise<unknown>) => {
    const t = performance.now();
    await what();
    return performance.now() - t;
  };
  const backfill: number[] = [];
  const alone: number[] = [];
  const full: number[] = [];
  let samples: string[] = [];
  for (let i = 0; i < 3; i++) {
    const store = new LocalBatchProgressStore();
    const startedAtMs = Date.now();
    const seen: string[] = [];
    const stop = store.watch((p: BatchProgress | undefined) => {
      const view = p?.views['users_by_country'];
      if (p && view) seen.push(`${Date.now() - startedAtMs} ms: ${view.state} ${view.fraction.toFixed(2)} (run ${p.fraction.toFixed(2)})`);
    });
    const progress = new BatchRunProgress({ store, connection, logger, definitionsVersion: 2, batchVersion: version + 1, producedBy: 'bench', startedAtMs, mayWrite: () => true });
    backfill.push(await timed(() => run(after, after.views, { previous: v1, extendUnchanged: true, listener: progress })));
    await progress.finish('published');
    stop();
    samples = seen;
    alone.push(await timed(() => run(after, newView, { previous: v1 })));
    full.push(await timed(() => run(after, after.views, { previous: v1 })));
    process.stderr.write(`run ${i + 1}: backfill ${backfill[i]!.toFixed(0)} ms, new view alone ${alone[i]!.toFixed(0)} ms, all views recomputed ${full[i]!.toFixed(0)} ms\n`);
  }
  process.stderr.write(`users_by_country's progress during the last backfill run:\n  ${samples.join('\n  ')}\n`);
  printBenchLine({
    bench: 'batch.backfill',
    value: Math.min(...backfill) / 1000,
    unit: 's',
    baseline: `batch recompute of the added view alone over the same ${EVENTS} events`,
    baselineValue: Math.min(...alone) / 1000,
  });
  printBenchLine({
    bench: 'batch.backfill.vs-full',
    value: Math.min(...backfill) / 1000,
    unit: 's',
    baseline: 'the same run recomputing every view (a scheduled run)',
    baselineValue: Math.min(...full) / 1000,
  });
} finally {
  connection.closeSync();
  instance.closeSync();
  rmSync(dir, { recursive: true, force: true });
}
