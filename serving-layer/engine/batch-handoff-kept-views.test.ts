import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { parseConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { LocalLog } from '../../core/source/local-log.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { groupRows, keyedEventRecords, keyedEvents, keyedSourceYaml, writeKeyedState, type KeyedEvent } from '../../test/support/keyed-events.ts';
import { memoryLogger } from '../../test/support/memory-logger.ts';
import { REJECTED_NOT_KEPT_TABLE, REJECTED_REALTIME_TABLE, SpeedLayer } from '../../speed-layer/index.ts';
import { BatchHandoff } from './batch-handoff.ts';
import { LiveViews } from './live-views.ts';
import { MasterDatasetViews } from './master-dataset-views.ts';
import { MaterializedViews } from './materialized-views.ts';
import { ServingDatabase } from './serving-database.ts';

/**
 * The handoff of a version that keeps the serving version's cuts (a backfill run, issue 16): the
 * view whose state file it hard-links keeps its materialized table as it is, while the views it
 * changes are materialized anew, and every view stays exact, before and after micro-batches.
 */
const BLOCK = 100;
const CUT = 1_000;
const BASE_MS = Date.UTC(2026, 10, 21, 9);
const SOURCE = keyedSourceYaml(BLOCK);
const V1 = `${SOURCE}
views:
  totals: {dimensions: [k], measures: {n: count(*), s: sum(v)}}
  copied: {dimensions: [k], measures: {hi: max(v)}}
  per_minute: {window: 1 minute, measures: {n: count(*)}}
`;
const V2 = `${SOURCE}
views:
  totals: {dimensions: [k], measures: {n: count(*), s: sum(v)}}
  copied: {dimensions: [k], measures: {hi: max(v)}}
  per_minute: {window: 1 minute, measures: {n: count(*), s: sum(v)}}
  lowest: {dimensions: [k], measures: {lo: min(v)}}
`;

const events = (from: number, to: number) => keyedEvents(BASE_MS, from, to);

/** The views of V2 (totals, copied and lowest by k; per_minute by window) by plain reduction. */
function reference(all: readonly KeyedEvent[]): Record<string, number[][]> {
  const sum = (es: KeyedEvent[]) => es.reduce((s, e) => s + e.v, 0);
  const byK = (k: string) => Number(k.slice(1));
  return {
    totals: groupRows(all, (e) => e.k, (k, es) => [byK(k), es.length, sum(es)]),
    copied: groupRows(all, (e) => e.k, (k, es) => [byK(k), Math.max(...es.map((e) => e.v))]),
    lowest: groupRows(all, (e) => e.k, (k, es) => [byK(k), Math.min(...es.map((e) => e.v))]),
    per_minute: groupRows(all, (e) => Math.floor(e.tsMs / 60_000) * 60_000, (w, es) => [w, es.length, sum(es)]),
  };
}

const QUERIES: Record<string, string> = {
  totals: 'SELECT k[2:]::DOUBLE, n::DOUBLE, s::DOUBLE FROM totals ORDER BY k',
  copied: 'SELECT k[2:]::DOUBLE, hi::DOUBLE FROM copied ORDER BY k',
  lowest: 'SELECT k[2:]::DOUBLE, lo::DOUBLE FROM lowest ORDER BY k',
  per_minute: 'SELECT epoch_ms(window_start)::DOUBLE, n::DOUBLE, s::DOUBLE FROM per_minute ORDER BY window_start',
};

describe('a handoff at unchanged cuts', () => {
  let dir: string;
  let log: LocalLog;
  let db: ServingDatabase;
  let speed: SpeedLayer;
  let handoff: BatchHandoff;
  let liveViews: LiveViews;
  let writer: DuckDBInstance;
  const { logger, lines } = memoryLogger();
  const [v1Config, v2Config] = [parseConfig(V1), parseConfig(V2)];

  /** Writes view `name` of `loaded` over the events below the cut to `file` (relative to dir). */
  const writeState = (loaded: LoadedConfig, name: string, file: string) => writeKeyedState(writer, loaded, name, events(0, CUT), dir, file);

  function manifest(version: number, views: BatchManifest['views']): BatchManifest {
    const now = new Date().toISOString();
    return {
      version, topic: 'events', cuts: { '0': CUT }, blockSize: BLOCK, location: join(dir, `v${version}`),
      views, eventsRead: CUT, startedAt: now, finishedAt: now, durationMs: 0, producedBy: 'test',
    };
  }

  async function append(from: number, to: number): Promise<void> {
    await log.append(keyedEventRecords(events(from, to)));
    await waitFor('the speed layer to catch up', () => speed.status().partitions[0]?.committedOffset === log.endOffset);
  }

  async function read(connection: DuckDBConnection, names: readonly string[]): Promise<Record<string, number[][]>> {
    const views: Record<string, number[][]> = {};
    for (const name of names) views[name] = (await connection.runAndReadAll(QUERIES[name]!)).getRowsJS() as number[][];
    return views;
  }

  /** Each materialized table's catalog identity: a new one whenever the table is built anew. */
  async function tableOids(): Promise<Record<string, unknown>> {
    const rows = (await db.adminConnection.runAndReadAll("SELECT table_name, table_oid FROM duckdb_tables() WHERE table_name LIKE 'materialized__%'")).getRowsJS();
    return Object.fromEntries(rows.map(([name, oid]) => [String(name).replace('materialized__', ''), oid]));
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-kept-views-'));
    writer = await DuckDBInstance.create(':memory:');
    mkdirSync(join(dir, 'v1'));
    const v1 = manifest(1, {
      totals: await writeState(v1Config, 'totals', 'v1/totals.parquet'),
      copied: await writeState(v1Config, 'copied', 'v1/copied.parquet'),
      per_minute: await writeState(v1Config, 'per_minute', 'v1/per_minute.parquet'),
    });
    log = await LocalLog.open(join(dir, 'log'), { logger });
    await log.append(keyedEventRecords(events(0, 2 * CUT)));
    // The node as RealtimeServing wires it, started at version 1's cuts.
    db = await ServingDatabase.create(v1Config);
    speed = await SpeedLayer.create({ loaded: v1Config, source: log, instance: db.instance, manifest: v1, logger });
    const materialized = await MaterializedViews.create(db.adminConnection, db.bound);
    speed.addListener(materialized);
    liveViews = new LiveViews({ database: db, realtime: speed, materialized, storageDir: dir, eventsRelation: 'events', logger }, v1Config, 1);
    const masterViews = new MasterDatasetViews({
      layout: new StorageLayout(dir), topic: 'events', schema: v1Config.schema,
      realtimeRejectedTable: REJECTED_REALTIME_TABLE, realtimeNotKeptTable: REJECTED_NOT_KEPT_TABLE, eventsTail: speed.eventsTail,
    });
    handoff = new BatchHandoff({ database: db, realtime: speed, masterViews, storageDir: dir, logger, liveViews });
    masterViews.committed(await masterViews.refresh(db.adminConnection, v1));
    await liveViews.startWith(v1);
    await handoff.apply(v1);
    await speed.start();
    await waitFor('the speed layer to catch up', () => speed.status().partitions[0]?.committedOffset === log.endOffset);
  }, 30_000);

  afterAll(async () => {
    await speed?.stop();
    db?.close();
    writer?.closeSync();
    await log?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps the materialized table of a view whose state file is the serving version's, builds the others anew, and every view stays exact", async () => {
    const before = reference(events(0, 2 * CUT));
    const v1Reference = { ...before, per_minute: before.per_minute!.map(([w, n]) => [w!, n!]) };
    expect(await read(db.adminConnection, ['totals', 'copied'])).toEqual({ totals: before.totals, copied: before.copied });
    expect((await db.adminConnection.runAndReadAll('SELECT epoch_ms(window_start)::DOUBLE, n::DOUBLE FROM per_minute ORDER BY 1')).getRowsJS()).toEqual(v1Reference.per_minute);

    // Definitions version 2 changes per_minute and adds lowest: both pending until a version holds them.
    const change = await handoff.exclusive(() => liveViews.apply(v2Config, 2, handoff.appliedManifest));
    expect(change).toMatchObject({ added: ['lowest'], changed: ['per_minute'], promoted: [] });
    await append(2 * CUT, 3 * CUT);

    // A backfill run at the same cuts: totals linked as it is, copied a copy of the same state.
    mkdirSync(join(dir, 'v2'));
    linkSync(join(dir, 'v1/totals.parquet'), join(dir, 'v2/totals.parquet'));
    copyFileSync(join(dir, 'v1/copied.parquet'), join(dir, 'v2/copied.parquet'));
    const v1Views = handoff.appliedManifest!.views;
    const v2 = manifest(2, {
      totals: { ...v1Views.totals!, file: 'v2/totals.parquet' },
      copied: { ...v1Views.copied!, file: 'v2/copied.parquet' },
      per_minute: await writeState(v2Config, 'per_minute', 'v2/per_minute.parquet'),
      lowest: await writeState(v2Config, 'lowest', 'v2/lowest.parquet'),
    });
    const oidsBefore = await tableOids();
    await handoff.apply(v2);
    const oidsAfter = await tableOids();

    expect(handoff.appliedManifest?.version).toBe(2);
    expect(lines.find((l) => l.msg === 'serving batch version' && l['version'] === 2)).toMatchObject({ kept: ['totals'] });
    expect(oidsAfter['totals']).toBe(oidsBefore['totals']);
    for (const name of ['copied', 'per_minute']) expect(oidsAfter[name], name).not.toBe(oidsBefore[name]);
    expect(oidsBefore['lowest']).toBeUndefined();
    expect(oidsAfter['lowest']).toBeDefined();
    expect(await read(db.adminConnection, Object.keys(QUERIES))).toEqual(reference(events(0, 3 * CUT)));

    // Micro-batches go on from there: the kept table is maintained as before.
    await append(3 * CUT, 3 * CUT + 750);
    expect(await read(db.adminConnection, Object.keys(QUERIES))).toEqual(reference(events(0, 3 * CUT + 750)));
    expect((await tableOids())['totals']).toBe(oidsBefore['totals']);
  }, 60_000);
});
