import type { DuckDBConnection } from '@duckdb/node-api';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { inTransaction } from '../../core/duckdb/in-transaction.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { memoryLogger } from '../../test/support/memory-logger.ts';
import { BatchHandoff, stageBatchVersion, type RealtimeHandoff } from './batch-handoff.ts';
import { MasterDatasetViews } from './master-dataset-views.ts';
import { ServingDatabase } from './serving-database.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import { realtimeTable } from '../../core/views/view-tables.ts';
import { MaterializedViews } from './materialized-views.ts';

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

  it("leaves a view's batch state as it is when the new version holds it in the serving version's very file, and loads a copy of it again", async () => {
    const serving = await writeVersion(8, 80);
    await handoff.apply(serving);
    /** Version `version` holding version 8's state of `totals` through `share` (a link or a copy). */
    const sharing = (version: number, share: (from: string, to: string) => void): BatchManifest => {
      mkdirSync(join(dir, `v${version}`), { recursive: true });
      share(join(dir, serving.views.totals!.file), join(dir, `v${version}/totals.parquet`));
      return { ...serving, version, location: join(dir, `v${version}`), views: { totals: { ...serving.views.totals!, file: `v${version}/totals.parquet` } } };
    };
    const stagedTables = async (manifest: BatchManifest) => {
      const c = await db.connect();
      try {
        const staged = await stageBatchVersion(c, manifest, db.bound, dir, [], serving);
        const names = (await c.runAndReadAll(`SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'staged__%'`)).getRowsJS().flat();
        await staged.discard(c);
        return names;
      } finally {
        c.closeSync();
      }
    };
    const linked = sharing(9, linkSync);
    expect(await stagedTables(linked)).toEqual([]);
    expect(await stagedTables(sharing(10, copyFileSync))).toEqual(['staged__10__totals']);
    await handoff.apply(linked);
    expect(handoff.appliedManifest?.version).toBe(9);
    expect(await total(db.adminConnection)).toBe(80);
  });
});

const BLOCK = 1_000;
const PARTITIONS = 2;
const PER_PARTITION = 12_000;

const SWAP_CONFIG = `
source: {timestamp: ts, schema: {ts: TIMESTAMP, k: VARCHAR, v: BIGINT}}
speed: {blockSize: ${BLOCK}}
views:
  totals: {dimensions: [k], measures: {n: count(*), s: sum(v), hi: max(v)}}
  per_minute: {window: 1 minute, measures: {n: count(*)}}
`;

/** The events, and what any correct view must show for them, computed in plain JS. */
const events = Array.from({ length: PARTITIONS * PER_PARTITION }, (_, i) => {
  const partition = i % PARTITIONS;
  const offset = Math.floor(i / PARTITIONS);
  return { partition, offset, k: `k${(offset * 7 + partition) % 5}`, v: offset * 3 + partition, ts: Date.UTC(2026, 10, 21, 9) + offset * 10 };
});
const expectedN = events.length;
const expectedS = events.reduce((s, e) => s + e.v, 0);

// The views either merge both state tables on every read, or read tables maintained in the swap transaction.
describe.each([{ served: 'merged on read' }, { served: 'materialized' }])('the handoff transaction, views $served', ({ served }) => {
  let db: ServingDatabase;
  let dir: string;
  let materialized: MaterializedViews | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-swap-'));
    db = await ServingDatabase.create(parseConfig(SWAP_CONFIG));
    const c = db.adminConnection;
    await c.run('CREATE TABLE ev (ts TIMESTAMP, k VARCHAR, v BIGINT, _partition INTEGER, _offset BIGINT)');
    // The same events as the JS array above, generated in SQL by the same formulas.
    await c.run(`INSERT INTO ev SELECT make_timestamp((${Date.UTC(2026, 10, 21, 9)} + (i // ${PARTITIONS}) * 10) * 1000),
        'k' || (((i // ${PARTITIONS}) * 7 + i % ${PARTITIONS}) % 5), (i // ${PARTITIONS}) * 3 + i % ${PARTITIONS}, i % ${PARTITIONS}, i // ${PARTITIONS}
      FROM range(${PARTITIONS * PER_PARTITION}) t(i)`);
    // Realtime state starts out holding every offset, block by block, as the speed layer keeps it.
    for (const bound of db.bound) {
      const partial = bound.view.partialSql('ev', [{ name: '_partition' }, { name: '_block', sql: `_offset // ${BLOCK}` }]);
      await c.run(`INSERT INTO ${quoteIdent(realtimeTable(bound.view.definition.name))} BY NAME ${partial}`);
    }
    if (served === 'materialized') materialized = await MaterializedViews.create(c, db.bound);
  });

  afterAll(() => {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes batch version `version` covering offsets below `cut` in every partition. */
  async function writeVersion(version: number, cut: number): Promise<BatchManifest> {
    const location = join(dir, `v${version}`);
    const c = db.adminConnection;
    const views: BatchManifest['views'] = {};
    for (const bound of db.bound) {
      const name = bound.view.definition.name;
      const file = `v${version}/${name}.parquet`;
      mkdirSync(location, { recursive: true });
      await c.run(`COPY (${bound.view.partialSql(`(SELECT * FROM ev WHERE _offset < ${cut})`)}) TO '${join(dir, file)}' (FORMAT parquet)`);
      views[name] = { definitionHash: bound.view.definitionHash, file, rows: 0 };
    }
    const now = new Date().toISOString();
    return {
      version, topic: 't', cuts: Object.fromEntries(Array.from({ length: PARTITIONS }, (_, p) => [String(p), cut])), blockSize: BLOCK,
      location, views, eventsRead: 0, startedAt: now, finishedAt: now, durationMs: 0, producedBy: 'test',
    };
  }

  it('never lets a query see the new batch with the old realtime blocks, or the reverse', async () => {
    const reader = await db.connect();
    const writer = await db.connect();
    let stop = false;
    let queries = 0;
    const mismatches: string[] = [];
    const readLoop = (async () => {
      while (!stop) {
        const [row] = (await reader.runAndReadAll('SELECT sum(n)::BIGINT, sum(s)::BIGINT, max(hi) FROM totals')).getRowsJS() as [bigint, bigint, bigint][];
        const [minute] = (await reader.runAndReadAll('SELECT sum(n)::BIGINT FROM per_minute')).getRowsJS() as [bigint][];
        queries++;
        if (row![0] !== BigInt(expectedN) || row![1] !== BigInt(expectedS) || minute![0] !== BigInt(expectedN)) {
          mismatches.push(`${row} / ${minute}`);
        }
      }
    })();
    for (let version = 1, cut = BLOCK; cut <= PER_PARTITION; version++, cut += BLOCK) {
      const manifest = await writeVersion(version, cut);
      const staged = await stageBatchVersion(writer, manifest, db.bound, dir);
      // The transaction the speed layer's handoff runs: swap batch state, drop blocks below the cut.
      await writer.run('BEGIN TRANSACTION');
      await staged.swap(writer);
      for (const bound of db.bound) {
        await writer.run(`DELETE FROM ${quoteIdent(realtimeTable(bound.view.definition.name))} WHERE _block < ${cut / BLOCK}`);
      }
      await materialized?.batchAppliedInTransaction(writer);
      await writer.run('COMMIT');
      await staged.discard(writer);
    }
    stop = true;
    await readLoop;
    expect(mismatches).toEqual([]);
    expect(queries).toBeGreaterThan(10);
    // Everything is in the batch now and the realtime side is empty.
    const [[left]] = (await writer.runAndReadAll(`SELECT count(*) FROM ${quoteIdent(realtimeTable('totals'))}`)).getRowsJS() as [[bigint]];
    expect(left).toBe(0n);
    const perKey = (await writer.runAndReadAll('SELECT k, n, s FROM totals ORDER BY k')).getRowsJS();
    const expectedPerKey = [...new Set(events.map((e) => e.k))].sort().map((k) => {
      const mine = events.filter((e) => e.k === k);
      return [k, BigInt(mine.length), BigInt(mine.reduce((s, e) => s + e.v, 0))];
    });
    expect(perKey).toEqual(expectedPerKey);
    reader.closeSync();
    writer.closeSync();
  }, 60_000);

  it('serves an empty batch state for a view whose definition changed since the version was computed', async () => {
    const manifest = await writeVersion(100, 2 * BLOCK);
    manifest.views.totals = { ...manifest.views.totals!, definitionHash: 'stale' };
    const c = await db.connect();
    const staged = await stageBatchVersion(c, manifest, db.bound, dir);
    await c.run('BEGIN TRANSACTION');
    await staged.swap(c);
    await materialized?.batchAppliedInTransaction(c);
    await c.run('COMMIT');
    await staged.discard(c);
    const [[rows]] = (await c.runAndReadAll('SELECT count(*) FROM batch__totals')).getRowsJS() as [[bigint]];
    const [[minuteRows]] = (await c.runAndReadAll('SELECT count(*) FROM batch__per_minute')).getRowsJS() as [[bigint]];
    expect(rows).toBe(0n);
    expect(minuteRows).toBeGreaterThan(0n);
    c.closeSync();
  });
});
