import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { SEGMENT_PARQUET_OPTIONS } from '../../core/storage/segment-parquet.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { aboveCutsRelationSql } from '../../speed-layer/above-cuts-sql.ts';
import { EventsTail } from '../../speed-layer/events-tail.ts';
import { MasterDatasetViews } from './master-dataset-views.ts';

const loaded = parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, page: VARCHAR, latency_ms: DOUBLE}}
views: {by_page: {window: none, dimensions: [page], measures: {n: count(*)}}}
`);
const TOPIC = 't';

/** Rows of partition `p`, offsets [from, to): what the archiver or the speed layer would hold. */
function rowsSql(p: number, from: number, to: number): string {
  return `SELECT ${p}::INTEGER AS _partition, o::BIGINT AS _offset, make_timestamp(o * 1000) AS _kafka_ts,
    make_timestamp(o * 1000) AS ts, '/p' || (o % 3) AS page, o::DOUBLE AS latency_ms FROM range(${from}, ${to}) t(o)`;
}

describe('MasterDatasetViews: events', () => {
  let dir: string;
  let layout: StorageLayout;
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-master-views-'));
    layout = new StorageLayout(dir);
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
  });

  afterEach(() => {
    connection.closeSync();
    instance.closeSync();
    rmSync(dir, { recursive: true, force: true });
  });

  async function archive(p: number, from: number, to: number): Promise<void> {
    mkdirSync(layout.masterPartitionDir(TOPIC, p), { recursive: true });
    const file = join(layout.masterPartitionDir(TOPIC, p), StorageLayout.segmentFileName({ topic: TOPIC, partition: p, firstOffset: from, endOffsetExclusive: to }));
    await connection.run(`COPY (${rowsSql(p, from, to)}) TO ${quoteLiteral(file)} (FORMAT parquet)`);
  }

  async function offsetsByPartition(): Promise<Record<number, [number, number, number, number]>> {
    const reader = await connection.runAndReadAll(
      'SELECT _partition, count(*)::DOUBLE, count(DISTINCT _offset)::DOUBLE, min(_offset)::DOUBLE, max(_offset)::DOUBLE FROM events GROUP BY 1 ORDER BY 1',
    );
    return Object.fromEntries((reader.getRows() as number[][]).map(([p, ...rest]) => [p, rest]));
  }

  it('reads the archive below each split and the tail from it, each offset once, never past what the views hold', async () => {
    await archive(0, 0, 100);
    await archive(0, 100, 200);
    await archive(1, 0, 100);
    const tail = await EventsTail.create(connection, loaded.schema, 1_000);
    // Partition 0: the speed layer consumed up to 260; its tail still has 150..199, archived since.
    await connection.run(`CREATE TEMP TABLE batch0 AS ${rowsSql(0, 150, 260)}`);
    await tail.append('temp.main.batch0', new Set([0]), true);
    // Partition 1: the speed layer is behind the archive, at 40 (replaying after a restart).
    tail.frontier.committed(new Map([[0, 260], [1, 40]]), new Set(), new Set());
    const views = new MasterDatasetViews({ layout, topic: TOPIC, schema: loaded.schema, eventsTail: tail });

    const refreshed = await views.refresh(connection, undefined);
    expect(refreshed.splits).toEqual(new Map([[0, 200], [1, 40]]));
    expect(await offsetsByPartition()).toEqual({ 0: [260, 260, 0, 259], 1: [40, 40, 0, 39] });

    // Once the view committed, the tail forgets 150..199: events stays the same.
    views.committed(refreshed);
    expect(tail.pruneDue()).toBe(true);
    await tail.prune();
    expect(tail.tailRows).toBe(60);
    expect(await offsetsByPartition()).toEqual({ 0: [260, 260, 0, 259], 1: [40, 40, 0, 39] });

    // A batch version whose cut (100) lies above what partition 1 consumed: in its handoff
    // the views hold offsets below the cut, and so does events.
    const manifest = { version: 1, topic: TOPIC, cuts: { '0': 100, '1': 100 } } as never;
    await views.refresh(connection, manifest);
    expect(await offsetsByPartition()).toEqual({ 0: [260, 260, 0, 259], 1: [100, 100, 0, 99] });
  });

  it("gives a new view's fill the rows of events at or above the cuts, from the tail alone for each partition cut at or above its split", async () => {
    await archive(0, 0, 100);
    await archive(0, 100, 200);
    await archive(1, 0, 100);
    const tail = await EventsTail.create(connection, loaded.schema, 1_000);
    await connection.run(`CREATE TEMP TABLE batch0 AS ${rowsSql(0, 150, 260)} UNION ALL ${rowsSql(1, 100, 140)}`);
    await tail.append('temp.main.batch0', new Set([0, 1]), true);
    tail.frontier.committed(new Map([[0, 260], [1, 140]]), new Set(), new Set());
    const views = new MasterDatasetViews({ layout, topic: TOPIC, schema: loaded.schema, eventsTail: tail });
    const refreshed = await views.refresh(connection, undefined);
    views.committed(refreshed);
    await tail.prune();
    const rowsOf = async (relation: string) => (await connection.runAndReadAll(`SELECT * FROM ${relation} ORDER BY _partition, _offset`)).getRowsJS();

    // The splits as events reads them: partition 0 from 200 (archived below), partition 1 from 100.
    expect((await connection.runAndReadAll(`SELECT _partition, split FROM ${tail.splitsTable} ORDER BY 1`)).getRowsJS()).toEqual([[0, 200n], [1, 100n]]);
    // Partition 0 from 180: the tail forgot 150..199 (archived), so events reads the archive for
    // 180..199; partition 1 from 100: all of it in the tail.
    const cuts = new Map([[0, 180], [1, 100]]);
    const relation = await tail.aboveCuts(connection, 'events', cuts);
    const expected = await rowsOf(aboveCutsRelationSql('events', cuts));
    expect(expected.map(([p]) => p)).toEqual([...Array<number>(80).fill(0), ...Array<number>(40).fill(1)]);
    expect(await rowsOf(relation)).toEqual(expected);
    // Both from the tail once both cuts are at or above the splits.
    const higher = new Map([[0, 200], [1, 100]]);
    const tailOnly = await tail.aboveCuts(connection, 'events', higher);
    expect(tailOnly).not.toMatch(/\bevents\b/);
    expect(await rowsOf(tailOnly)).toEqual(await rowsOf(aboveCutsRelationSql('events', higher)));
  });

  it('keeps the newest archived events in the tail (recentRows): events reads them there and names no file above the split', async () => {
    await archive(0, 0, 100);
    await archive(0, 100, 200);
    await archive(0, 200, 300);
    // One partition keeps 150 archived events besides those not archived yet (300..349).
    const tail = await EventsTail.create(connection, loaded.schema, 1_000, 150);
    await connection.run(`CREATE TEMP TABLE batch0 AS ${rowsSql(0, 0, 350)}`);
    await tail.append('temp.main.batch0', new Set([0]), true);
    tail.frontier.committed(new Map([[0, 350]]), new Set([0]), new Set([0]));
    const views = new MasterDatasetViews({ layout, topic: TOPIC, schema: loaded.schema, eventsTail: tail });

    // The archive holds 300 > 150 offsets past the tail's start: the split moves to keep about
    // three quarters of 150 (188), at the file end nearest that (200).
    const refreshed = await views.refresh(connection, undefined);
    expect(refreshed.splits).toEqual(new Map([[0, 200]]));
    expect(refreshed.archived).toEqual(new Map([[0, 300]]));
    views.committed(refreshed);
    await tail.prune();
    expect(tail.tailRows).toBe(150);
    // The newest file is not read: without it, events is still every offset once.
    rmSync(join(layout.masterPartitionDir(TOPIC, 0), StorageLayout.segmentFileName({ topic: TOPIC, partition: 0, firstOffset: 200, endOffsetExclusive: 300 })));
    expect(await offsetsByPartition()).toEqual({ 0: [350, 350, 0, 349] });
  });
});

describe('MasterDatasetViews: events filtered on event time', () => {
  let dir: string;
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-master-views-time-'));
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
  });

  afterEach(() => {
    connection.closeSync();
    instance.closeSync();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Offset o holds the event of second o, but every 10th event is 95 s late. */
  const eventSecond = (o: number) => (o % 10 === 0 ? o - 95 : o);
  const rows = (p: number, from: number, to: number) => `SELECT ${p}::INTEGER AS _partition, o::BIGINT AS _offset, make_timestamp(o * 1000000) AS _kafka_ts,
    make_timestamp((CASE WHEN o % 10 = 0 THEN o - 95 ELSE o END) * 1000000) AS ts, '/p' || (o % 3) AS page, o::DOUBLE AS latency_ms FROM range(${from}, ${to}) t(o)`;

  /** Files READ_PARQUET opened in the query, from DuckDB's profile. */
  async function filesOpened(sql: string): Promise<number> {
    await connection.run("PRAGMA enable_profiling = 'json'");
    const profile = JSON.parse(String((await connection.runAndReadAll(`EXPLAIN ANALYZE ${sql}`)).getRows()[0]![1]));
    await connection.run('PRAGMA disable_profiling');
    let files = 0;
    const walk = (node: { extra_info?: Record<string, unknown>; children?: unknown[] }) => {
      files += Number(node.extra_info?.['Total Files Read'] ?? 0);
      for (const child of node.children ?? []) walk(child as typeof node);
    };
    walk(profile);
    return files;
  }

  it('opens only the segments whose event times can match, and answers as if it read them all', async () => {
    const layout = new StorageLayout(dir);
    const segments: { p: number; maxSecond: number }[] = [];
    for (const p of [0, 1, 2]) {
      mkdirSync(layout.masterPartitionDir(TOPIC, p), { recursive: true });
      for (let from = 0; from < 600; from += 50) {
        const file = join(layout.masterPartitionDir(TOPIC, p), StorageLayout.segmentFileName({ topic: TOPIC, partition: p, firstOffset: from, endOffsetExclusive: from + 50 }));
        await connection.run(`COPY (${rows(p, from, from + 50)}) TO ${quoteLiteral(file)} (${SEGMENT_PARQUET_OPTIONS})`);
        segments.push({ p, maxSecond: Math.max(...Array.from({ length: 50 }, (_, i) => eventSecond(from + i))) });
      }
    }
    const tail = await EventsTail.create(connection, loaded.schema, 1_000);
    await connection.run(`CREATE TEMP TABLE batch0 AS ${rows(0, 600, 700)}`);
    await tail.append('temp.main.batch0', new Set([0]), true);
    tail.frontier.committed(new Map([[0, 700], [1, 600], [2, 600]]), new Set(), new Set());
    const views = new MasterDatasetViews({ layout, topic: TOPIC, schema: loaded.schema, eventsTail: tail });
    views.committed(await views.refresh(connection, undefined));

    for (const sinceSecond of [0, 300, 520, 560, 590, 650, 800]) {
      const sql = `SELECT count(*)::DOUBLE, coalesce(sum(latency_ms), 0) FROM events WHERE ts >= make_timestamp(${sinceSecond * 1_000_000})`;
      const offsets = [0, 1, 2].flatMap((p) => Array.from({ length: p === 0 ? 700 : 600 }, (_, o) => o)).filter((o) => eventSecond(o) >= sinceSecond);
      expect((await connection.runAndReadAll(sql)).getRows()[0]).toEqual([offsets.length, offsets.reduce((a, b) => a + b, 0)]);
      const matching = segments.filter((s) => s.maxSecond >= sinceSecond).length;
      const opened = await filesOpened(sql);
      // Each matching segment, and at most a group's worth of others (the newest groups are small).
      expect(opened).toBeGreaterThanOrEqual(matching);
      if (sinceSecond >= 520) expect(opened).toBeLessThanOrEqual(Math.max(matching, 1) + 8);
    }
    expect(await filesOpened('SELECT count(*) FROM events')).toBe(segments.length);
  });
});
