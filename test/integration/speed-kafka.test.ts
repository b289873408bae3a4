import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Kafka, Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { generateRecords, referenceViews } from '../support/foundation-events.ts';
import { createServingViews, foundationConfig, readFoundationViews, writeBatchTables } from '../support/foundation-views.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { endOffsets, goodEvents, produceRecords, testKafka, waitFor, type ProducedRecord } from './fixtures/speed-kafka.ts';

const PARTITIONS = 4;
const BLOCK_SIZE = 100;
const logger = createLogger('speed-kafka-test', { level: 'silent' });

describe('Speed layer on Kafka', () => {
  const topic = randomTopicName('speed');
  const loaded = foundationConfig({ topic, speed: { interval: '100ms', blockSize: BLOCK_SIZE, maxRejectedKept: 1_000 } });
  const metrics = new Registry();
  let broker: KafkaTestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let instance: DuckDBInstance;
  let serving: DuckDBConnection;
  let speed: SpeedLayer;
  const produced: ProducedRecord[] = [];
  let seed = 100;

  async function produce(count: number): Promise<void> {
    produced.push(...(await produceRecords(producer, topic, PARTITIONS, generateRecords(count, { seed: seed++, badEvery: 15, startIndex: produced.length }))));
  }

  async function caughtUp(): Promise<void> {
    const ends = await endOffsets(kafka, topic);
    await waitFor('the speed layer to reach the end of every partition', () =>
      [...ends].every(([p, end]) => (speed.status().partitions.find((s) => s.partition === p)?.committedOffset ?? 0) >= end),
    );
  }

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 3, topics: [{ name: topic, partitions: PARTITIONS }] });
    kafka = testKafka(broker.brokers);
    producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    instance = await DuckDBInstance.create(':memory:');
    serving = await instance.connect();
    await produce(1_500); // before the speed layer starts: it must read from the beginning
    speed = await SpeedLayer.create({ loaded, source: new KafkaRecordSource({ brokers: broker.brokers, topic }, logger), instance, logger, metrics });
    await createServingViews(serving, speed.views);
    await speed.start();
  });

  afterAll(async () => {
    await speed?.stop();
    serving?.closeSync();
    instance?.closeSync();
    await producer?.disconnect();
    await broker?.stop();
  });

  it('reads every partition from the beginning into views equal to a plain reduction over the produced events', async () => {
    for (let round = 0; round < 4; round++) await produce(500);
    await caughtUp();
    expect(await readFoundationViews(serving)).toEqual(referenceViews(goodEvents(produced)));
    const status = speed.status();
    expect(status.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3]);
    for (const p of status.partitions) expect(p).toMatchObject({ cutExclusive: 0, lagRecords: 0, stalled: false });
  });

  it('counts bad records per reason and keeps each with its partition, offset and raw value, queryable', async () => {
    const bad = produced.filter((p) => p.record.reject);
    const reasonOf = (p: ProducedRecord) => (p.record.value === null ? 'empty' : p.record.reject);
    const status = speed.status();
    expect(status.rejected.total).toBe(bad.length);
    for (const reason of new Set(bad.map(reasonOf))) expect(status.rejected.byReason[reason!]).toBe(bad.filter((b) => reasonOf(b) === reason).length);

    const kept = (await serving.runAndReadAll('SELECT topic, _partition, _offset, raw, reason, message FROM rejected_realtime')).getRowObjects();
    const byPosition = (a: { partition: number; offset: number }, b: { partition: number; offset: number }) => a.partition - b.partition || a.offset - b.offset;
    expect(kept.map((k) => ({ topic: k.topic, partition: Number(k._partition), offset: Number(k._offset), raw: k.raw, reason: k.reason })).sort(byPosition)).toEqual(
      bad
        .map((b) => ({ topic, partition: b.partition, offset: b.offset, raw: b.record.value?.toString() ?? null, reason: reasonOf(b) }))
        .sort(byPosition),
    );
    for (const k of kept) expect(k.message).toEqual(expect.any(String));

    const exposition = await metrics.metrics();
    for (const reason of new Set(bad.map(reasonOf))) expect(exposition).toContain(`lambda_speed_rejected_records_total{reason="${reason}"}`);
    for (let p = 0; p < PARTITIONS; p++) {
      expect(exposition).toContain(`lambda_speed_lag_records{partition="${p}"} 0`);
      expect(exposition).toContain(`lambda_speed_freshness_seconds{partition="${p}"}`);
    }
  });

  it('hands over to a batch version and keeps counting new events on top of it', async () => {
    const cuts = new Map(speed.status().partitions.map((p) => [p.partition, Math.floor(p.committedOffset / BLOCK_SIZE) * BLOCK_SIZE - BLOCK_SIZE]));
    const below = produced.filter((p) => p.offset < cuts.get(p.partition)!);
    const now = new Date().toISOString();
    const manifest: BatchManifest = {
      version: 1,
      topic,
      cuts: Object.fromEntries([...cuts].map(([p, cut]) => [String(p), cut])),
      blockSize: BLOCK_SIZE,
      location: '',
      views: {},
      eventsRead: below.length,
      startedAt: now,
      finishedAt: now,
      durationMs: 0,
      producedBy: 'test',
    };
    await speed.applyBatch(manifest, (connection) => writeBatchTables(connection, speed.views, goodEvents(below)));
    expect(await readFoundationViews(serving)).toEqual(referenceViews(goodEvents(produced)));
    const rejectedBelow = await serving.runAndReadAll(
      `SELECT count(*)::DOUBLE FROM rejected_realtime WHERE _offset < CASE _partition ${[...cuts].map(([p, c]) => `WHEN ${p} THEN ${c}`).join(' ')} END`,
    );
    expect(rejectedBelow.getRows()[0]![0]).toBe(0);

    await produce(800);
    await caughtUp();
    expect(await readFoundationViews(serving)).toEqual(referenceViews(goodEvents(produced)));
    expect(speed.status().batchVersion).toBe(1);
  });
});
