import { seededRandom } from '../core/random/seeded-random.ts';
import { DuckDBInstance, DuckDBTimestampValue, type DuckDBConnection } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../core/batch/batch-manifest.ts';
import { validateConfig } from '../core/config/load-config.ts';
import { createLogger } from '../core/observability/logger.ts';
import { LocalLog } from '../core/source/local-log.ts';
import { bindViews } from '../core/views/bind-views.ts';
import { DECODED_EVENTS_TABLE } from './micro-batch-decoder.ts';
import { SpeedLayer, type RealtimeListener } from './speed-layer.ts';
import { generateRecords, referenceViews, type GeneratedRecord } from '../test/support/foundation-events.ts';
import { createServingViews, foundationConfig, readFoundationViews, writeBatchTables } from '../test/support/foundation-views.ts';
import { waitFor } from '../test/harness/wait-for.ts';

/**
 * The speed layer fed by the single-node local log (a RecordSource like Kafka), on a real DuckDB
 * database shared with "serving" connections; views are compared with a plain JavaScript
 * reduction over the generated events.
 */
const BLOCK_SIZE = 100;
const logger = createLogger('speed-layer-test', { level: 'silent' });

function manifest(version: number, cut: number, topic = 'events'): BatchManifest {
  const now = new Date().toISOString();
  return { version, topic, cuts: { '0': cut }, blockSize: BLOCK_SIZE, location: '', views: {}, eventsRead: 0, startedAt: now, finishedAt: now, durationMs: 0, producedBy: 'test' };
}

describe('SpeedLayer on the local log', () => {
  let dir: string;
  let log: LocalLog;
  let instance: DuckDBInstance;
  let serving: DuckDBConnection;
  let speed: SpeedLayer | undefined;
  const loaded = foundationConfig({ topic: 'events', speed: { interval: '100ms', blockSize: BLOCK_SIZE, maxBatchRecords: 500, maxRejectedKept: 5 } });

  async function append(records: readonly GeneratedRecord[]): Promise<void> {
    // The local log stores no null values: an empty record stands for a tombstone.
    await log.append(records.map((r) => r.value ?? Buffer.alloc(0)));
  }

  async function startSpeed(options: { manifest?: BatchManifest; metrics?: Registry; listeners?: RealtimeListener[] } = {}): Promise<SpeedLayer> {
    const { listeners = [], ...rest } = options;
    speed = await SpeedLayer.create({ loaded, source: log, instance, logger, ...rest });
    for (const listener of listeners) speed.addListener(listener);
    await createServingViews(serving, speed.views);
    await speed.start();
    return speed;
  }

  const caughtUp = () => speed!.status().partitions[0]?.committedOffset === log.endOffset;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'speed-layer-'));
    log = await LocalLog.open(dir, { logger });
    instance = await DuckDBInstance.create(':memory:');
    serving = await instance.connect();
  });

  afterEach(async () => {
    await speed?.stop();
    speed = undefined;
    serving.closeSync();
    instance.closeSync();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every view equal to a plain reduction over the good events, and rejects the bad ones with their reasons', async () => {
    const metrics = new Registry();
    await startSpeed({ metrics });
    const records = generateRecords(3_000, { seed: 1, badEvery: 20 });
    for (let i = 0; i < records.length; i += 700) await append(records.slice(i, i + 700));
    await waitFor('the speed layer to catch up', caughtUp);

    const good = records.flatMap((r) => (r.event ? [r.event] : []));
    expect(await readFoundationViews(serving)).toEqual(referenceViews(good));

    const bad = records.filter((r) => r.reject).map((r) => (r.value === null ? 'empty' : r.reject));
    const status = speed!.status();
    expect(status.rejected.total).toBe(bad.length);
    for (const reason of new Set(bad)) expect(status.rejected.byReason[reason!]).toBe(bad.filter((b) => b === reason).length);
    // Only the newest maxRejectedKept are kept, with the offsets and raw values of the records.
    const kept = (await serving.runAndReadAll('SELECT _offset, reason, raw FROM rejected_realtime ORDER BY _offset')).getRowObjects();
    expect(kept).toHaveLength(5);
    const badOffsets = records.flatMap((r, offset) => (r.reject ? [offset] : [])).slice(-5);
    expect(kept.map((k) => Number(k._offset))).toEqual(badOffsets);
    for (const k of kept) {
      const record = records[Number(k._offset)]!;
      expect(k.reason).toBe(record.value === null ? 'empty' : record.reject);
      expect(k.raw).toBe(record.value === null ? '' : record.value.toString());
    }

    const exposition = await metrics.metrics();
    expect(exposition).toMatch(/lambda_speed_records_total\{outcome="accepted"\} 2\d{3}/);
    expect(exposition).toMatch(/lambda_speed_lag_records\{partition="0"\} 0/);
    expect(exposition).toContain('lambda_speed_micro_batch_duration_seconds_bucket');
    expect(exposition).toContain('lambda_speed_freshness_seconds{partition="0"}');
    expect(exposition).toMatch(/lambda_speed_stalled_partitions 0/);
    expect(status.partitions[0]).toMatchObject({ lagRecords: 0, stalled: false, committedOffset: records.length });
  });

  it('keeps each good event in the tail of `events` with its offset and Kafka timestamp, whichever route decoded it', async () => {
    await startSpeed();
    const records = generateRecords(2_000, { seed: 7, badEvery: 15 });
    const chunkMs = (chunk: number) => 1_700_000_000_000 + chunk * 1_000;
    for (let i = 0; i < records.length; i += 500) await log.append(records.slice(i, i + 500).map((r) => r.value ?? Buffer.alloc(0)), chunkMs(i / 500));
    await waitFor('the speed layer to catch up', caughtUp);
    const rows = (await serving.runAndReadAll('SELECT _partition, _offset::DOUBLE, epoch_ms(_kafka_ts)::DOUBLE, ts FROM realtime_events_tail ORDER BY _offset')).getRows();
    const good = records.flatMap((r, offset) => (r.event ? [[0, offset, chunkMs(Math.floor(offset / 500)), r.event.tsMs]] : []));
    expect(rows.map(([p, o, k]) => [p, o, k])).toEqual(good.map(([p, o, k]) => [p, o, k]));
    expect(rows.map(([, , , ts]) => (ts as DuckDBTimestampValue).micros / 1000n)).toEqual(good.map(([, , , ts]) => BigInt(ts as number)));
    expect(speed!.status().eventsTail).toMatchObject({ tailRows: good.length, lagging: false, lagRecords: 0 });
  });

  it('drops realtime blocks below the published cut in the same transaction as the swap', async () => {
    await startSpeed();
    const records = generateRecords(2_000, { seed: 2, badEvery: 25 });
    await append(records);
    await waitFor('the speed layer to catch up', caughtUp);
    const good = records.flatMap((r) => (r.event ? [r.event] : []));
    const expected = referenceViews(good);
    const total = expected.page_traffic.reduce((sum, row) => sum + (row.views as number), 0);

    // Readers on another connection must never see the batch and the realtime blocks it covers
    // both (a double count) or neither (a gap), however the swap and the delete interleave.
    const seen = new Set<number>();
    let reads = 0;
    let reading = true;
    const reader = (async () => {
      const connection = await instance.connect();
      while (reading) {
        const rows = (await connection.runAndReadAll('SELECT sum(views)::DOUBLE FROM page_traffic')).getRows();
        seen.add(rows[0]![0] as number);
        reads++;
      }
      connection.closeSync();
    })();
    const cut = 1_300;
    const readsSoFar = async (more: number) => {
      const target = reads + more;
      await waitFor(`${more} more reads`, () => reads >= target);
    };
    await speed!.applyBatch(manifest(1, cut), async (connection) => {
      await writeBatchTables(connection, speed!.views, records.slice(0, cut).flatMap((r) => (r.event ? [r.event] : [])));
      await readsSoFar(3); // while the swap is written but not committed
    });
    await readsSoFar(3); // after the commit
    reading = false;
    await reader;

    expect(reads).toBeGreaterThan(5);
    expect([...seen]).toEqual([total]);
    expect(await readFoundationViews(serving)).toEqual(expected);
    const blocks = (await serving.runAndReadAll('SELECT min(_block)::DOUBLE FROM realtime__page_traffic')).getRows()[0]![0];
    expect(blocks).toBe(cut / BLOCK_SIZE);
    const rejectedBelow = (await serving.runAndReadAll(`SELECT count(*)::DOUBLE FROM rejected_realtime WHERE _offset < ${cut}`)).getRows()[0]![0];
    expect(rejectedBelow).toBe(0);
    expect(speed!.status()).toMatchObject({ batchVersion: 1, partitions: [{ cutExclusive: cut }] });

    // Records after the handoff still land on top of the new batch version.
    const more = generateRecords(500, { seed: 3, badEvery: 25, startIndex: 2_000 });
    await append(more);
    await waitFor('the speed layer to catch up', caughtUp);
    expect(await readFoundationViews(serving)).toEqual(referenceViews([...good, ...more.flatMap((r) => (r.event ? [r.event] : []))]));
  });

  it('rolls the whole handoff back when the swap fails', async () => {
    await startSpeed();
    const records = generateRecords(800, { seed: 4 });
    await append(records);
    await waitFor('the speed layer to catch up', caughtUp);
    const before = await readFoundationViews(serving);

    await expect(
      speed!.applyBatch(manifest(1, 500), async (connection) => {
        await writeBatchTables(connection, speed!.views, records.slice(0, 500).map((r) => r.event!));
        throw new Error('disk full');
      }),
    ).rejects.toThrow('disk full');

    expect(await readFoundationViews(serving)).toEqual(before);
    expect(speed!.status()).toMatchObject({ batchVersion: undefined, partitions: [{ cutExclusive: 0 }] });
  });

  it('starts reading at the cut of the current batch version and skips records below a cut raised before they are read', async () => {
    const records = generateRecords(1_500, { seed: 5, badEvery: 30 });
    await append(records.slice(0, 1_000));
    const firstCut = 400;
    await writeBatchTables(serving, await bindViews(loaded, serving), records.slice(0, firstCut).flatMap((r) => (r.event ? [r.event] : [])));
    await startSpeed({ manifest: manifest(1, firstCut) });
    expect(speed!.status().partitions[0]).toMatchObject({ cutExclusive: firstCut });
    await waitFor('the speed layer to catch up', caughtUp);

    // A newer version covering offsets not even appended yet: the speed layer skips them.
    const secondCut = 1_200;
    await speed!.applyBatch(manifest(2, secondCut), (connection) =>
      writeBatchTables(connection, speed!.views, records.slice(0, secondCut).flatMap((r) => (r.event ? [r.event] : []))),
    );
    await append(records.slice(1_000));
    await waitFor('the speed layer to catch up', caughtUp);
    expect(await readFoundationViews(serving)).toEqual(referenceViews(records.flatMap((r) => (r.event ? [r.event] : []))));
  });

  it('decodes a micro-batch again when a handoff raised a cut over it after it was decoded, ahead of its commit', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    const eventsPerCall: number[] = [];
    await startSpeed({
      listeners: [
        {
          async microBatchInTransaction(connection, events) {
            eventsPerCall.push(events ? ((await connection.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${events}`)).getRows()[0]![0] as number) : 0);
            if (!held) {
              held = true;
              await gate;
            }
          },
        },
      ],
    });
    const records = generateRecords(800, { seed: 9 });
    await append(records.slice(0, 300));
    await waitFor('the first micro-batch to be in its transaction', () => held);
    // The next micro-batch is cut and decoded while the first one cannot commit.
    await append(records.slice(300));
    await waitFor('every record to be received', () => speed!.status().partitions[0]?.receivedOffset === 800);
    // The decoder's second slot holds the second micro-batch once it is decoded: usually all 500
    // records, fewer when the micro-batch was cut before the last of them arrived (a loaded machine).
    let decoded = 0;
    await waitFor('the second micro-batch to be decoded', async () => {
      const slot = `${DECODED_EVENTS_TABLE}_1`;
      const tables = (await serving.runAndReadAll(`SELECT database_name FROM duckdb_tables() WHERE table_name = '${slot}'`)).getRows();
      if (tables.length === 0) return false;
      // Its records, once each: a record decoded by the general route leaves a placeholder row too.
      [[decoded]] = (await serving.runAndReadAll(`SELECT count(DISTINCT _offset)::INTEGER FROM "${tables[0]![0]}".main."${slot}"`)).getRows() as [[number]];
      return decoded >= 200;
    });
    // A cut inside that micro-batch (600 when it holds all 500), leaving at least 100 of its records above it.
    const cut = 300 + Math.floor(decoded / 100) * 100 - 200;
    const handoff = speed!.applyBatch(manifest(1, cut), (connection) => writeBatchTables(connection, speed!.views, records.slice(0, cut).map((r) => r.event!)));
    release();
    await handoff;
    await waitFor('the speed layer to catch up', caughtUp);

    expect(await readFoundationViews(serving)).toEqual(referenceViews(records.map((r) => r.event!)));
    // The first micro-batch, then the second decoded again from the cut (and any after it).
    expect(eventsPerCall[0]).toBe(300);
    expect(eventsPerCall[1]).toBe(300 + decoded - cut);
    expect(eventsPerCall.slice(1).reduce((a, b) => a + b, 0)).toBe(800 - cut);
  });

  it('refuses batch versions it cannot hand over to exactly', async () => {
    await startSpeed({ manifest: manifest(3, 1_000) });
    const swap = async () => undefined;
    await expect(speed!.applyBatch(manifest(4, 1_050), swap)).rejects.toThrow(/not a multiple of speed.blockSize 100/);
    await expect(speed!.applyBatch(manifest(4, 900), swap)).rejects.toThrow(/moves the cut of partition 0 back from 1000 to 900/);
    await expect(speed!.applyBatch(manifest(4, 1_100, 'other'), swap)).rejects.toThrow(/for topic "other", not "events"/);
    expect(speed!.status().batchVersion).toBe(3);
  });
  /** `sum(views)` over realtime state as `connection` sees it (its own transaction included). */
  async function realtimeViews(connection: DuckDBConnection): Promise<number> {
    return (await connection.runAndReadAll('SELECT coalesce(sum(views__count), 0)::DOUBLE FROM realtime__page_traffic')).getRows()[0]![0] as number;
  }

  it('calls a listener inside each micro-batch transaction with the events relation, then after the commit', async () => {
    const calls: { events: number; inTransaction: number; committedBefore: number }[] = [];
    const committed: number[] = [];
    await startSpeed({
      listeners: [
        {
          async microBatchInTransaction(connection, events) {
            // The writer sees this micro-batch's rows already; the serving connection not yet.
            const eventCount = events ? ((await connection.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${events}`)).getRows()[0]![0] as number) : 0;
            calls.push({ events: eventCount, inTransaction: await realtimeViews(connection), committedBefore: await realtimeViews(serving) });
          },
          async microBatchCommitted(connection) {
            committed.push(await realtimeViews(connection));
          },
        },
      ],
    });
    const records = generateRecords(1_200, { seed: 6, badEvery: 10 });
    for (let i = 0; i < records.length; i += 300) {
      await append(records.slice(i, i + 300));
      await waitFor('the speed layer to catch up', caughtUp);
    }

    const good = records.flatMap((r) => (r.event ? [r.event] : []));
    expect(calls.reduce((n, c) => n + c.events, 0)).toBe(good.length);
    let before = 0;
    for (const call of calls) {
      expect(call.committedBefore).toBe(before);
      before = call.inTransaction;
    }
    // page_traffic counts the good events with latency_ms >= 0 (its filter).
    const counted = referenceViews(good).page_traffic.reduce((sum, row) => sum + (row.views as number), 0);
    expect(before).toBe(counted);
    // Progress is committed before microBatchCommitted runs: the last call may still be on its way.
    await waitFor('the last commit listener call', () => committed.length === calls.length);
    expect(committed).toEqual(calls.map((c) => c.inTransaction));
  });

  it('rolls a micro-batch back when a listener throws inside its transaction, and retries it', async () => {
    let failuresLeft = 2;
    const committed: number[] = [];
    await startSpeed({
      listeners: [
        {
          async microBatchInTransaction() {
            if (failuresLeft-- > 0) throw new Error('alert store unavailable');
          },
          async microBatchCommitted(connection) {
            committed.push(await realtimeViews(connection));
          },
        },
      ],
    });
    const records = generateRecords(900, { seed: 7, badEvery: 15 });
    await append(records);
    await waitFor('the speed layer to catch up', caughtUp);

    // Counted once, with every reject once: the failed attempts left nothing behind.
    const good = records.flatMap((r) => (r.event ? [r.event] : []));
    expect(await readFoundationViews(serving)).toEqual(referenceViews(good));
    expect(speed!.status().rejected.total).toBe(records.filter((r) => r.reject).length);
    const rejectedRows = (await serving.runAndReadAll('SELECT count(*)::DOUBLE FROM rejected_realtime')).getRows()[0]![0];
    expect(rejectedRows).toBe(Math.min(5, records.filter((r) => r.reject).length));
    expect(failuresLeft).toBeLessThan(0);
    expect(committed.length).toBeGreaterThan(0);
    expect(speed!.status().microBatches).toMatchObject({ failures: 2 });
  });

  it('calls batchAppliedInTransaction inside the handoff transaction, and rolls the handoff back when it throws', async () => {
    let failHandoff = true;
    const seen: { version: number; minBlock: number | null; servingMinBlock: number | null; current: string[] }[] = [];
    const minBlock = async (connection: DuckDBConnection) =>
      (await connection.runAndReadAll('SELECT min(_block)::DOUBLE FROM realtime__page_traffic')).getRows()[0]![0] as number | null;
    await startSpeed({
      listeners: [
        {
          async batchAppliedInTransaction(connection, applied, current) {
            seen.push({ version: applied.version, minBlock: await minBlock(connection), servingMinBlock: await minBlock(serving), current: [...current] });
            if (failHandoff) throw new Error('materialized view refresh failed');
          },
        },
      ],
    });
    const records = generateRecords(1_000, { seed: 8 });
    await append(records);
    await waitFor('the speed layer to catch up', caughtUp);
    const expected = referenceViews(records.map((r) => r.event!));
    const swap = (connection: DuckDBConnection) => writeBatchTables(connection, speed!.views, records.slice(0, 600).map((r) => r.event!));

    await expect(speed!.applyBatch(manifest(1, 600), swap)).rejects.toThrow('materialized view refresh failed');
    // The swap and the drop were visible to the listener only, and are gone with the rollback.
    expect(seen).toEqual([{ version: 1, minBlock: 6, servingMinBlock: 0, current: [] }]);
    expect(await readFoundationViews(serving)).toEqual(expected);
    expect(await minBlock(serving)).toBe(0);
    const batchRows = (await serving.runAndReadAll('SELECT count(*)::DOUBLE FROM batch__page_traffic')).getRows()[0]![0];
    expect(batchRows).toBe(0);
    expect(speed!.status()).toMatchObject({ batchVersion: undefined, partitions: [{ cutExclusive: 0 }] });

    failHandoff = false;
    await speed!.applyBatch(manifest(1, 600), swap);
    expect(seen.at(-1)).toEqual({ version: 1, minBlock: 6, servingMinBlock: 0, current: [] });
    expect(await readFoundationViews(serving)).toEqual(expected);
    expect(await minBlock(serving)).toBe(6);
    expect(speed!.status()).toMatchObject({ batchVersion: 1, partitions: [{ cutExclusive: 600 }] });

    // The views a swap says it left current are passed on at the same cuts only: a raised cut drops realtime blocks.
    await speed!.applyBatch(manifest(2, 600), async (connection) => {
      await swap(connection);
      return { materializedCurrent: new Set(['page_traffic']) };
    });
    expect(seen.at(-1)).toEqual({ version: 2, minBlock: 6, servingMinBlock: 6, current: ['page_traffic'] });
    await speed!.applyBatch(manifest(3, 700), async (connection) => {
      await writeBatchTables(connection, speed!.views, records.slice(0, 700).map((r) => r.event!));
      return { materializedCurrent: new Set(['page_traffic']) };
    });
    expect(seen.at(-1)).toEqual({ version: 3, minBlock: 7, servingMinBlock: 6, current: [] });
    expect(await readFoundationViews(serving)).toEqual(expected);
  });
});

describe('SpeedLayer with other view definitions', () => {
  it('computes every view of a config exactly, whatever its window, dimensions, filter and field types', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'speed-views-'));
    const log = await LocalLog.open(dir, { logger });
    const instance = await DuckDBInstance.create(':memory:');
    const serving = await instance.connect();
    const loaded = validateConfig({
      source: {
        timestamp: 'at',
        schema: { at: 'TIMESTAMP', shop: 'VARCHAR', qty: 'INTEGER', big: 'BIGINT', vip: 'BOOLEAN', day: 'DATE', price: 'DOUBLE' },
      },
      speed: { interval: '100ms', blockSize: 64 },
      views: {
        totals: { measures: { n: 'count(*)', qty: 'sum(qty)', first_day: 'min(day)', vip_share: 'avg(CASE WHEN vip THEN 1 ELSE 0 END)' } },
        by_shop: {
          window: '5s',
          dimensions: ['shop', 'vip'],
          filter: 'qty > 0',
          measures: { orders: 'count(qty)', biggest: 'max(big)', cheapest: 'min(price)', days: 'approx_count_distinct(day)', last_shop: 'max(shop)' },
        },
      },
    });
    const speed = await SpeedLayer.create({ loaded, source: log, instance, logger });
    try {
      await createServingViews(serving, speed.views);
      await speed.start();
      const random = seededRandom(11);
      const events = Array.from({ length: 1_500 }, (_, i) => ({
        at: Date.UTC(2026, 10, 21) + i * 97 - (random() < 0.1 ? 60_000 : 0),
        shop: random() < 0.1 ? null : `shop-${Math.floor(random() * 5)}`,
        qty: Math.floor(random() * 7) - 2,
        big: random() < 0.2 ? `${2n ** 60n + BigInt(i)}` : i * 1_000,
        vip: random() < 0.3,
        day: `2026-${String(1 + Math.floor(random() * 12)).padStart(2, '0')}-${String(1 + Math.floor(random() * 28)).padStart(2, '0')}`,
        price: Math.floor(random() * 400) / 8,
      }));
      for (let i = 0; i < events.length; i += 400) await log.append(events.slice(i, i + 400).map((e) => Buffer.from(JSON.stringify(e))));
      await waitFor('the speed layer to catch up', () => speed.status().partitions[0]?.committedOffset === log.endOffset);

      // The reference: native DuckDB aggregates over a plain table of the events, not the views' SQL.
      await serving.run('CREATE TEMP TABLE ref ("at" TIMESTAMP, shop VARCHAR, qty INTEGER, big BIGINT, vip BOOLEAN, day DATE, price DOUBLE)');
      const appender = await serving.createAppender('ref', 'main', 'temp');
      for (const e of events) {
        appender.appendValue(new DuckDBTimestampValue(BigInt(e.at) * 1000n));
        e.shop === null ? appender.appendNull() : appender.appendVarchar(e.shop);
        appender.appendInteger(e.qty);
        appender.appendBigInt(BigInt(e.big));
        appender.appendBoolean(e.vip);
        appender.appendVarchar(e.day);
        appender.appendDouble(e.price);
        appender.endRow();
      }
      appender.closeSync();
      const rows = async (sql: string) => JSON.stringify((await serving.runAndReadAll(sql)).getRowsJson());
      expect(await rows('SELECT * FROM totals')).toBe(
        await rows('SELECT count(*) AS n, sum(qty) AS qty, min(day) AS first_day, avg(CASE WHEN vip THEN 1 ELSE 0 END) AS vip_share FROM ref'),
      );
      expect(await rows('SELECT * FROM by_shop ORDER BY ALL')).toBe(
        await rows(`SELECT time_bucket(INTERVAL 5 SECOND, "at", TIMESTAMP '1970-01-01') AS window_start, shop, vip, count(qty) AS orders,
          max(big) AS biggest, min(price) AS cheapest, count(DISTINCT day) AS days, max(shop) AS last_shop
          FROM ref WHERE qty > 0 GROUP BY ALL ORDER BY ALL`),
      );
    } finally {
      await speed.stop();
      serving.closeSync();
      instance.closeSync();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
