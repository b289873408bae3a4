import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile, validateConfig, type LoadedConfig } from '../core/config/load-config.ts';
import { LocalBatchManifestStore } from '../core/coordination/local-batch-manifest-store.ts';
import { LocalBatchRunRequests } from '../core/coordination/local-batch-run-requests.ts';
import { StandaloneLeaderElection } from '../core/coordination/standalone-leader-election.ts';
import { installSqlMacros } from '../core/duckdb/sql-macros.ts';
import { createLogger } from '../core/observability/logger.ts';
import { readPartitionChain } from '../core/storage/segment-chain.ts';
import { StorageLayout } from '../core/storage/storage-layout.ts';
import { expectBatchMatchesReference } from '../test/support/batch-assertions.ts';
import { writeSegments, type WrittenRecord } from '../test/support/batch-segments.ts';
import { BatchLayer } from './batch-layer.ts';

const FOUNDATION = fileURLToPath(new URL('../test/fixtures/foundation.yaml', import.meta.url));
const TOPIC = 'clicks';
const logger = createLogger('batch-layer-test', { level: 'silent' });

describe('BatchLayer in single-node mode', () => {
  let dir: string;
  let layout: StorageLayout;
  let loaded: LoadedConfig;
  let layer: BatchLayer;
  let registry: Registry;
  const written: WrittenRecord[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'batch-layer-'));
    layout = new StorageLayout(dir);
    const base = await loadConfigFile(FOUNDATION);
    const raw = structuredClone(base.config) as unknown as Record<string, any>;
    delete raw['zookeeper'];
    raw['storage'] = { dir, keepVersions: 2 };
    raw['speed'] = { ...raw['speed'], blockSize: 1_000 };
    loaded = validateConfig(raw);
    written.push(...(await writeSegments(layout, TOPIC, loaded.schema, { partition: 0, fromOffset: 0, toOffsetExclusive: 2_345, seed: 1 })));
    written.push(...(await writeSegments(layout, TOPIC, loaded.schema, { partition: 1, fromOffset: 0, toOffsetExclusive: 3_000, seed: 2 })));
    registry = new Registry();
    layer = await BatchLayer.create({
      loaded,
      layout,
      election: new StandaloneLeaderElection('solo'),
      manifestStore: new LocalBatchManifestStore(layout, 20),
      runRequests: new LocalBatchRunRequests(layout, logger, 20),
      logger,
      metrics: registry,
      schedule: '0 0 1 1 *',
    });
    await layer.start();
  });

  afterAll(async () => {
    await layer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('publishes a version on request whose views match a plain reduction below the cuts', async () => {
    const outcome = await new LocalBatchRunRequests(layout, logger, 20).request({ timeoutMs: 30_000 });
    expect(outcome).toMatchObject({ ok: true, version: 1 });
    const manifest = (await new LocalBatchManifestStore(layout).current())!;
    expect(manifest.cuts).toEqual({ '0': 2_000, '1': 3_000 });
    const covered = written.filter((w) => w.offset < manifest.cuts[String(w.partition)]!);
    expect(manifest.eventsRead).toBe(covered.length);
    const duckdb = await DuckDBInstance.create(':memory:');
    const connection = await duckdb.connect();
    await installSqlMacros(connection);
    try {
      await expectBatchMatchesReference(connection, dir, manifest, loaded.views, covered.flatMap((w) => (w.event ? [w.event] : [])));
    } finally {
      connection.closeSync();
      duckdb.closeSync();
    }
    const status = await layer.status();
    expect(status).toMatchObject({ isMaster: true, master: 'solo', runsSucceeded: 1, published: { version: 1 } });
  });

  it('keeps the last storage.keepVersions versions', async () => {
    expect((await layer.runNow()).version).toBe(2);
    expect((await layer.runNow()).version).toBe(3);
    expect(readdirSync(layout.batchDir()).filter((n) => n.startsWith('v'))).toEqual(['v00000002', 'v00000003']);
  });

  it('leaves the previous version serving when a run fails, counts it, and recovers on the next run', async () => {
    const chain = await readPartitionChain(layout, TOPIC, 0);
    const victim = chain.items[0]!.path;
    const original = readdirSync(join(victim, '..'));
    writeFileSync(victim, 'not parquet');
    const failed = await layer.runNow();
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/parquet|magic|file/i);
    expect((await new LocalBatchManifestStore(layout).current())?.version).toBe(3);
    const runs = (await registry.getSingleMetric('lambda_batch_runs_total')!.get()).values;
    expect(runs.find((v) => v.labels['outcome'] === 'failed')?.value).toBe(1);
    expect(readdirSync(layout.batchDir()).filter((n) => n.startsWith('v') || n.startsWith('.'))).toEqual(['v00000002', 'v00000003']);

    // Repair the segment (rewrite the same records) and run again.
    rmSync(victim);
    await writeSegments(layout, TOPIC, loaded.schema, {
      partition: 0,
      fromOffset: chain.items[0]!.firstOffset,
      toOffsetExclusive: chain.items[0]!.endOffsetExclusive,
      seed: 99,
      maxSegment: 1_000_000,
    }).catch(() => undefined);
    expect(readdirSync(join(victim, '..')).length).toBe(original.length);
    const recovered = await layer.runNow();
    expect(recovered).toMatchObject({ ok: true, version: 4 });
    expect((await layer.status()).runsFailed).toBe(1);
  });
});

describe('BatchLayer threads (batch.threads)', () => {
  async function threadsOf(batch: Record<string, unknown>): Promise<number> {
    const dir = mkdtempSync(join(tmpdir(), 'batch-threads-'));
    const base = await loadConfigFile(FOUNDATION);
    const raw = structuredClone(base.config) as unknown as Record<string, any>;
    delete raw['zookeeper'];
    raw['storage'] = { dir };
    raw['batch'] = { ...raw['batch'], ...batch };
    const layout = new StorageLayout(dir);
    const layer = await BatchLayer.create({
      loaded: validateConfig(raw),
      layout,
      election: new StandaloneLeaderElection('solo'),
      manifestStore: new LocalBatchManifestStore(layout, 20),
      runRequests: new LocalBatchRunRequests(layout, logger, 20),
      logger,
      metrics: new Registry(),
      schedule: '0 0 1 1 *',
    });
    try {
      return (await layer.status()).threads;
    } finally {
      await layer.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('runs the recompute on batch.threads threads when set, on as many as DuckDB takes by default otherwise', async () => {
    expect(await threadsOf({ threads: 1 })).toBe(1);
    const plain = await DuckDBInstance.create(':memory:');
    const connection = await plain.connect();
    const defaultThreads = Number((await connection.runAndReadAll("SELECT current_setting('threads')")).getRows()[0]![0]);
    connection.closeSync();
    plain.closeSync();
    expect(await threadsOf({})).toBe(defaultThreads);
  });
});
