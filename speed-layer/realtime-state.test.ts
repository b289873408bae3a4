import { DuckDBInstance, DuckDBTimestampValue, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bindViews, type BoundView } from '../core/views/bind-views.ts';
import { RealtimeState } from './realtime-state.ts';
import { generateRecords, referenceViews, type GoodEvent } from '../test/support/foundation-events.ts';
import { createServingViews, foundationConfig, readFoundationViews } from '../test/support/foundation-views.ts';

const BLOCK_SIZE = 50;
const PARTITIONS = 3;

describe('RealtimeState', () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;
  let views: BoundView[];
  const events = generateRecords(1_200, { seed: 7 }).map((r, i) => ({ ...r.event!, partition: i % PARTITIONS, offset: Math.floor(i / PARTITIONS) }));

  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
    views = await bindViews(foundationConfig({ topic: 't' }), connection);
    await connection.run(
      'CREATE TABLE ev (ts TIMESTAMP, user_id VARCHAR, page VARCHAR, country VARCHAR, latency_ms DOUBLE, amount DOUBLE, _partition INTEGER, _offset BIGINT)',
    );
    const appender = await connection.createAppender('ev');
    for (const e of events) {
      appender.appendTimestamp(new DuckDBTimestampValue(BigInt(e.tsMs) * 1000n));
      for (const v of [e.user_id, e.page, e.country]) v === null ? appender.appendNull() : appender.appendVarchar(v);
      for (const v of [e.latency_ms, e.amount]) v === null ? appender.appendNull() : appender.appendDouble(v);
      appender.appendInteger(e.partition);
      appender.appendBigInt(BigInt(e.offset));
      appender.endRow();
    }
    appender.closeSync();
  });

  afterAll(() => {
    connection?.closeSync();
    instance?.closeSync();
  });

  async function freshState(): Promise<RealtimeState> {
    const state = await RealtimeState.create(connection, views, { blockSize: BLOCK_SIZE, compactMinRows: 1 });
    await createServingViews(connection, views);
    // Forty small micro-batches: many partial rows per key and block.
    for (let from = 0; from < 400; from += 10) await state.addEvents(`(SELECT * FROM ev WHERE _offset >= ${from} AND _offset < ${from + 10})`);
    return state;
  }

  const atOrAbove = (cuts: readonly number[]) => events.filter((e) => e.offset >= cuts[e.partition]!) as GoodEvent[];

  it('gives the same views before and after compaction, with one row per key, partition and block after', async () => {
    const state = await freshState();
    const expected = referenceViews(events);
    expect(await readFoundationViews(connection)).toEqual(expected);
    const before = state.rowCounts().get('page_traffic')!;

    expect(await state.compact({ force: true })).toEqual(['page_traffic', 'revenue_by_country']);
    expect(await readFoundationViews(connection)).toEqual(expected);
    const distinct = await connection.runAndReadAll(
      'SELECT count(*)::DOUBLE FROM (SELECT DISTINCT window_start, page, country, _partition, _block FROM realtime__page_traffic)',
    );
    const after = state.rowCounts().get('page_traffic')!;
    expect(after).toBe(distinct.getRows()[0]![0]);
    expect(after).toBeLessThan(before);
    await state.recount();
    expect(state.rowCounts().get('page_traffic')).toBe(after);
  });

  it('gives memory back: rounds of micro-batches, compactions and handoffs do not pile up deleted rows', async () => {
    const state = await RealtimeState.create(connection, views, { blockSize: 1_000, compactMinRows: 1 });
    const tableMemoryMiB = async () =>
      (await connection.runAndReadAll("SELECT sum(memory_usage_bytes)::DOUBLE / 1048576 FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'")).getRows()[0]![0] as number;
    const perRound = 100_000;
    const memory: number[] = [];
    for (let round = 0; round < 6; round++) {
      const from = round * perRound;
      const events = `(SELECT TIMESTAMP '2026-11-21' + to_milliseconds(i) AS ts, 'u' || (i % 977) AS user_id, '/p' || (i % 31) AS page,
        'C' || (i % 7) AS country, (i % 100)::DOUBLE AS latency_ms, (i % 13)::DOUBLE AS amount, 0 AS _partition, i AS _offset
        FROM range(${from}, ${from + perRound}) r(i))`;
      await state.addEvents(events);
      await state.compact({ force: true });
      await state.dropBelow(new Map([[0, from + perRound - 1_000]]));
      memory.push(await tableMemoryMiB());
    }
    expect(memory.at(-1)!).toBeLessThanOrEqual(Math.max(2, memory[0]! * 1.5));
  });

  it('drops exactly the blocks below each partition cut', async () => {
    const state = await freshState();
    await state.compact({ force: true });
    const cuts = [100, 0, 250];
    await state.dropBelow(new Map(cuts.map((cut, partition) => [partition, cut])));
    expect(await readFoundationViews(connection)).toEqual(referenceViews(atOrAbove(cuts)));
    await state.recount();
    const counted = await connection.runAndReadAll('SELECT count(*)::DOUBLE FROM realtime__page_traffic');
    expect(state.rowCounts().get('page_traffic')).toBe(counted.getRows()[0]![0]);
  });
});
