import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
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
});
