import { DuckDBInstance } from '@duckdb/node-api';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { parseConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { LocalLog } from '../../core/source/local-log.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { groupRows, keyedEventRecords, keyedEvents, keyedSourceYaml, writeKeyedState, type KeyedEvent } from '../../test/support/keyed-events.ts';
import { memoryLogger } from '../../test/support/memory-logger.ts';
import { REJECTED_NOT_KEPT_TABLE, REJECTED_REALTIME_TABLE, SpeedLayer, type StagedFill } from '../../speed-layer/index.ts';
import { STAGED_FILL_TABLE_PREFIX } from '../../speed-layer/speed-layer.ts';
import { BatchHandoff } from './batch-handoff.ts';
import { LiveViews, type RealtimeViews } from './live-views.ts';
import { MasterDatasetViews } from './master-dataset-views.ts';
import { MaterializedViews } from './materialized-views.ts';
import { ServingDatabase } from './serving-database.ts';

/**
 * A new definition's realtime state is built beside the micro-batches (SpeedLayer.stageFills),
 * then added in the change's transaction with what was committed since. Here something always
 * happens between the two, on the real speed layer: micro-batches commit, or a handoff raises
 * the cuts; the views must come out exactly as a plain reduction of every event says.
 */
const BLOCK = 100;
const CUT = 1_000;
const BASE_MS = Date.UTC(2026, 11, 6, 9);
const SOURCE = keyedSourceYaml(BLOCK);
const V1 = `${SOURCE}
views:
  totals: {dimensions: [k], measures: {n: count(*), s: sum(v)}}
  per_minute: {window: 1 minute, measures: {n: count(*)}}
`;
const V2 = `${SOURCE}
views:
  totals: {dimensions: [k], measures: {n: count(*), s: sum(v)}}
  per_minute: {window: 1 minute, measures: {n: count(*), s: sum(v)}}
  lowest: {dimensions: [k], filter: 'v % 3 <> 0', measures: {lo: min(v), n: count(*)}}
`;

/** V1 and a new view: the served ones unchanged. */
const V3 = `${V1}
  lowest: {dimensions: [k], filter: 'v % 3 <> 0', measures: {lo: min(v), n: count(*)}}
`;

const events = (from: number, to: number) => keyedEvents(BASE_MS, from, to);

/** The views of V2 by plain reduction. */
function reference(all: readonly KeyedEvent[]): Record<string, number[][]> {
  const sum = (es: KeyedEvent[]) => es.reduce((s, e) => s + e.v, 0);
  const byK = (k: string) => Number(k.slice(1));
  return {
    totals: groupRows(all, (e) => e.k, (k, es) => [byK(k), es.length, sum(es)]),
    per_minute: groupRows(all, (e) => Math.floor(e.tsMs / 60_000) * 60_000, (w, es) => [w, es.length, sum(es)]),
    lowest: groupRows(all.filter((e) => e.v % 3 !== 0), (e) => e.k, (k, es) => [byK(k), Math.min(...es.map((e) => e.v)), es.length]),
  };
}

const QUERIES: Record<string, string> = {
  totals: 'SELECT k[2:]::DOUBLE, n::DOUBLE, s::DOUBLE FROM totals ORDER BY k',
  per_minute: 'SELECT epoch_ms(window_start)::DOUBLE, n::DOUBLE, s::DOUBLE FROM per_minute ORDER BY window_start',
  lowest: 'SELECT k[2:]::DOUBLE, lo::DOUBLE, n::DOUBLE FROM lowest ORDER BY k',
};

/** A node's serving engine as RealtimeServing wires it, over a local log, at batch version `manifest` (or none). */
class Node {
  log!: LocalLog;
  db!: ServingDatabase;
  speed!: SpeedLayer;
  handoff!: BatchHandoff;
  liveViews!: LiveViews;
  /** Runs between the staging of fills and the change's transaction. */
  betweenStageAndChange: () => Promise<void> = async () => undefined;
  readonly staged: StagedFill[] = [];
  /** Per stage, whether it said its rows were built before it ended. */
  readonly builtBeforeStaged: boolean[] = [];

  static async start(dir: string, loaded: LoadedConfig, logEvents: number, manifest: BatchManifest | undefined): Promise<Node> {
    const node = new Node();
    const { logger } = memoryLogger();
    node.log = await LocalLog.open(join(dir, 'log'), { logger });
    await node.log.append(keyedEventRecords(events(0, logEvents)));
    node.db = await ServingDatabase.create(loaded);
    node.speed = await SpeedLayer.create({ loaded, source: node.log, instance: node.db.instance, ...(manifest ? { manifest } : {}), logger });
    const materialized = await MaterializedViews.create(node.db.adminConnection, node.db.bound);
    node.speed.addListener(materialized);
    const speed = node.speed;
    const realtime: RealtimeViews = {
      changeViews: (change) => speed.changeViews(change),
      stageFills: async (select, relation, built) => {
        let builtFirst = false;
        const staged = await speed.stageFills(select, relation, () => {
          // Told once the rows are built, before the stage ends (what lets a backfill start).
          builtFirst = node.staged.length === 0;
          built?.();
        });
        node.builtBeforeStaged.push(builtFirst);
        node.staged.push(...staged);
        await node.betweenStageAndChange();
        return staged;
      },
      dropStaged: (staged) => speed.dropStaged(staged),
    };
    node.liveViews = new LiveViews({ database: node.db, realtime, materialized, storageDir: dir, eventsRelation: 'events', logger }, loaded, 1);
    const masterViews = new MasterDatasetViews({
      layout: new StorageLayout(dir), topic: 'events', schema: loaded.schema,
      realtimeRejectedTable: REJECTED_REALTIME_TABLE, realtimeNotKeptTable: REJECTED_NOT_KEPT_TABLE, eventsTail: speed.eventsTail,
    });
    node.handoff = new BatchHandoff({ database: node.db, realtime: speed, masterViews, storageDir: dir, logger, liveViews: node.liveViews });
    masterViews.committed(await masterViews.refresh(node.db.adminConnection, manifest));
    await node.liveViews.startWith(manifest);
    if (manifest) await node.handoff.apply(manifest);
    await speed.start();
    await node.caughtUp();
    return node;
  }

  async append(from: number, to: number): Promise<void> {
    await this.log.append(keyedEventRecords(events(from, to)));
    await this.caughtUp();
  }

  caughtUp(): Promise<void> {
    return waitFor('the speed layer to catch up', () => this.speed.status().partitions[0]?.committedOffset === this.log.endOffset);
  }

  async read(names: readonly string[]): Promise<Record<string, number[][]>> {
    const views: Record<string, number[][]> = {};
    for (const name of names) views[name] = (await this.db.adminConnection.runAndReadAll(QUERIES[name]!)).getRowsJS() as number[][];
    return views;
  }

  async stagedTablesLeft(): Promise<number> {
    const reader = await this.db.adminConnection.runAndReadAll(`SELECT count(*)::DOUBLE FROM duckdb_tables() WHERE starts_with(table_name, '${STAGED_FILL_TABLE_PREFIX}')`);
    return reader.getRows()[0]![0] as number;
  }

  async stop(): Promise<void> {
    await this.speed?.stop();
    this.db?.close();
    await this.log?.close();
  }
}

describe('a new definition filled beside the micro-batches', () => {
  let dir: string;
  let node: Node | undefined;
  afterEach(async () => {
    await node?.stop();
    node = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts, exactly once, the events committed between its staging and the change', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-staged-fill-'));
    // No batch version: realtime state from offset 0 is exact alone, so the new definitions serve at once.
    node = await Node.start(dir, parseConfig(V1), 2_000, undefined);
    node.betweenStageAndChange = () => node!.append(2_000, 2_650);

    const change = await node.liveViews.apply(parseConfig(V2), 2, undefined);

    expect(change).toMatchObject({ added: ['lowest'], changed: ['per_minute'], promoted: expect.arrayContaining(['lowest', 'per_minute']) });
    // Both fills were built beside the micro-batches (the path under test), and none is left over.
    expect(node.staged.map((s) => s.view).sort()).toEqual(['lowest', 'per_minute']);
    expect(node.builtBeforeStaged).toEqual([true]);
    expect(await node.stagedTablesLeft()).toBe(0);
    expect(await node.read(Object.keys(QUERIES))).toEqual(reference(events(0, 2_650)));
    await node.append(2_650, 3_100);
    expect(await node.read(Object.keys(QUERIES))).toEqual(reference(events(0, 3_100)));
  }, 60_000);

  it('leaves out what a handoff between its staging and the change moved below the cuts', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-staged-fill-cut-'));
    const [v1Config, v3Config] = [parseConfig(V1), parseConfig(V3)];
    const writer = await DuckDBInstance.create(':memory:');
    try {
      const v1 = await batchVersion(writer, dir, 1, CUT, v1Config, v1Config, ['totals', 'per_minute']);
      node = await Node.start(dir, v1Config, 2 * CUT + 450, v1);
      // Version 2 raises the cut to 2×CUT and holds the new view. (A node hands versions over
      // one at a time with definition changes; the speed layer alone does not rely on it.) It is
      // handed over after the fill was staged from cut CUT: the staged rows in [CUT, 2×CUT) are
      // counted by its files and must be left out.
      const v2 = await batchVersion(writer, dir, 2, 2 * CUT, v1Config, v3Config, ['totals', 'per_minute', 'lowest']);
      node.betweenStageAndChange = async () => {
        await node!.handoff.apply(v2);
        await node!.append(2 * CUT + 450, 2 * CUT + 700);
      };

      const change = await node.liveViews.apply(v3Config, 2, v2);

      expect(node.staged.map((s) => s.view)).toEqual(['lowest']);
      expect(change).toMatchObject({ added: ['lowest'], changed: [], promoted: ['lowest'] });
      expect(await node.read(['totals', 'lowest'])).toEqual(pick(reference(events(0, 2 * CUT + 700)), ['totals', 'lowest']));
      await node.append(2 * CUT + 700, 2 * CUT + 900);
      expect(await node.read(['totals', 'lowest'])).toEqual(pick(reference(events(0, 2 * CUT + 900)), ['totals', 'lowest']));
      expect(await node.stagedTablesLeft()).toBe(0);
    } finally {
      writer.closeSync();
    }
  }, 60_000);
});

const pick = (views: Record<string, number[][]>, names: readonly string[]) => Object.fromEntries(names.map((n) => [n, views[n]!]));

/**
 * Batch version `version` at cut `cut`: `views` over the events below it, as batch files, each as
 * `loaded` defines it, or `added` for one `loaded` lacks.
 */
async function batchVersion(writer: DuckDBInstance, dir: string, version: number, cut: number, loaded: LoadedConfig, added: LoadedConfig, views: readonly string[]): Promise<BatchManifest> {
  const location = join(dir, `v${version}`);
  mkdirSync(location);
  const entries: BatchManifest['views'] = {};
  for (const name of views) {
    const defining = loaded.views.some((v) => v.definition.name === name) ? loaded : added;
    entries[name] = await writeKeyedState(writer, defining, name, events(0, cut), dir, `v${version}/${name}.parquet`);
  }
  const now = new Date().toISOString();
  return { version, topic: 'events', cuts: { '0': cut }, blockSize: BLOCK, location, views: entries, eventsRead: cut, startedAt: now, finishedAt: now, durationMs: 0, producedBy: 'test' };
}
