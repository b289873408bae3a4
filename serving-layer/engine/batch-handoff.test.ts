import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { inTransaction } from '../../core/duckdb/in-transaction.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { memoryLogger } from '../../test/support/memory-logger.ts';
import { BatchHandoff, type RealtimeHandoff } from './batch-handoff.ts';
import { MasterDatasetViews } from './master-dataset-views.ts';
import { ServingDatabase } from './serving-database.ts';

const CONFIG = `
source: {timestamp: ts, schema: {ts: TIMESTAMP, k: VARCHAR}}
views:
  totals: {dimensions: [k], measures: {n: count(*)}}
`;

describe('BatchHandoff', () => {
  let dir: string;
  let db: ServingDatabase;
  let handoff: BatchHandoff;
  /** The realtime side's contract, kept to its core: one transaction around what the handoff asks. */
  let failNext = false;
  const realtime: RealtimeHandoff = {
    applyBatch: (_manifest, work) =>
      inTransaction(db.adminConnection, async () => {
        await work(db.adminConnection);
        if (failNext) throw new Error('dropping realtime blocks failed');
      }),
  };
  const { logger, lines } = memoryLogger();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-handoff-'));
    const loaded = parseConfig(CONFIG);
    db = await ServingDatabase.create(loaded);
    const masterViews = new MasterDatasetViews({ layout: new StorageLayout(dir), topic: 't', schema: loaded.schema });
    handoff = new BatchHandoff({ database: db, realtime, masterViews, storageDir: dir, logger });
  });

  afterAll(() => {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Batch version `version` of `totals`, counting `n` events of key 'a'. */
  async function writeVersion(version: number, n: number): Promise<BatchManifest> {
    const bound = db.bound[0]!;
    const file = `v${version}/totals.parquet`;
    mkdirSync(join(dir, `v${version}`), { recursive: true });
    const events = `(SELECT TIMESTAMP '2026-01-01' AS ts, 'a' AS k FROM range(${n}))`;
    await db.adminConnection.run(`COPY (${bound.view.partialSql(events)}) TO '${join(dir, file)}' (FORMAT parquet)`);
    const now = new Date().toISOString();
    return {
      version, topic: 't', cuts: { '0': 0 }, blockSize: 1, location: join(dir, `v${version}`),
      views: { totals: { definitionHash: bound.view.definitionHash, file, rows: 1 } },
      eventsRead: n, startedAt: now, finishedAt: now, durationMs: 0, producedBy: 'test',
    };
  }

  const total = async (connection: DuckDBConnection) => (await connection.runAndReadAll('SELECT sum(n)::INTEGER FROM totals')).getRowsJS()[0]![0];

  it('applies a newer version, ignores one not newer, and keeps the previous version when a handoff fails', async () => {
    await handoff.apply(await writeVersion(2, 20));
    expect(await total(db.adminConnection)).toBe(20);
    await handoff.apply(await writeVersion(1, 10));
    await handoff.apply(await writeVersion(2, 30));
    expect(handoff.appliedManifest?.version).toBe(2);
    expect(await total(db.adminConnection)).toBe(20);

    failNext = true;
    await expect(handoff.apply(await writeVersion(3, 40))).rejects.toThrow('dropping realtime blocks failed');
    failNext = false;
    expect(await total(db.adminConnection)).toBe(20);
    expect(handoff.appliedManifest?.version).toBe(2);
    // The staging tables are gone whether the handoff committed or not.
    const staged = (await db.adminConnection.runAndReadAll("SELECT count(*)::INTEGER FROM duckdb_tables() WHERE table_name LIKE 'staged__%'")).getRowsJS();
    expect(staged).toEqual([[0]]);
  });

  it('applies what the store publishes in order, and reports a failure in lastError and the log', async () => {
    let publish: (manifest: BatchManifest) => void = () => undefined;
    const unwatch = handoff.follow({ watch: (listener) => ((publish = listener), () => undefined) });
    failNext = true;
    publish(await writeVersion(5, 50));
    await handoff.settled();
    expect(handoff.lastError).toBe('dropping realtime blocks failed');
    expect(lines.some((l) => l.msg === 'applying batch version 5 failed; the previous one keeps serving')).toBe(true);
    failNext = false;
    publish(await writeVersion(6, 60));
    publish(await writeVersion(7, 70));
    await handoff.settled();
    expect(handoff.lastError).toBeUndefined();
    expect(handoff.appliedManifest?.version).toBe(7);
    expect(await total(db.adminConnection)).toBe(70);
    unwatch();
  });
});
