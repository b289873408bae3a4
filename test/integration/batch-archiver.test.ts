import { seededRandom } from '../../core/random/seeded-random.ts';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Producer } from 'kafkajs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Archiver } from '../../batch-layer/archiver.ts';
import { loadConfigFile, type LoadedConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { readPartitionChain } from '../../core/storage/segment-chain.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { expectArchiveHolds, produceClicks, waitFor, type ProducedRecord } from './fixtures/batch-kafka.ts';

const FOUNDATION = fileURLToPath(new URL('../fixtures/foundation.yaml', import.meta.url));
const logger = createLogger('batch-archiver-test', { level: 'silent' });

async function archivedEnd(layout: StorageLayout, topic: string, partition: number): Promise<number> {
  return (await readPartitionChain(layout, topic, partition)).endOffsetExclusive;
}

describe('Archiver on the Kafka-protocol test broker', () => {
  let broker: KafkaTestBroker;
  let loaded: LoadedConfig;
  let producer: Producer;
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'archiver-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 1 });
    loaded = await loadConfigFile(FOUNDATION);
    producer = new KafkaRecordSource({ brokers: broker.brokers, topic: 'unused' }, logger).client.producer({ allowAutoTopicCreation: false });
    await producer.connect();
  });

  afterAll(async () => {
    await producer?.disconnect();
    await broker?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('archives every record exactly once, rejected records beside them with their reason, flushing by size and by time', async () => {
    const topic = randomTopicName('archive');
    await broker.createTopic(topic, 3);
    const layout = new StorageLayout(tempDir());
    const random = seededRandom(11);
    const produced: ProducedRecord[] = [];
    for (let p = 0; p < 3; p++) produced.push(...(await produceClicks(producer, topic, p, 1_000 + p * 137, random)));
    const duckdb = await DuckDBInstance.create(':memory:');
    const registry = new Registry();
    const archiver = await Archiver.create({
      source: new KafkaRecordSource({ brokers: broker.brokers, topic }, logger),
      layout,
      schema: loaded.schema,
      duckdb,
      groupId: `${topic}-archiver`,
      logger,
      metrics: registry,
      // Segments staged ahead in groups of 50 (the next test writes each segment in one go).
      flush: { maxRecords: 300, intervalMs: 300, stageRecords: 50 },
      compaction: false,
      workers: 0, // decoding and writing on this thread (the other tests use worker threads)
    });
    try {
      await archiver.start();
      const ends = [1_000, 1_137, 1_274];
      await waitFor('everything archived', async () => (await Promise.all(ends.map((_, p) => archivedEnd(layout, topic, p)))).every((e, p) => e === ends[p]), 30_000);
      // A record that arrives later is flushed by time, well before 300 more arrive.
      produced.push(...(await produceClicks(producer, topic, 1, 5, random)));
      await waitFor('the late records flushed by time', async () => (await archivedEnd(layout, topic, 1)) === 1_142, 10_000);
      ends[1] = 1_142;
      for (let p = 0; p < 3; p++) await expectArchiveHolds(layout, topic, p, produced, { endExclusive: ends[p]! });
      // Each segment file lists its records in offset order.
      const reader = await duckdb.connect();
      try {
        for (let p = 0; p < 3; p++) {
          for (const item of (await readPartitionChain(layout, topic, p)).items) {
            const offsets = (await reader.runAndReadAll(`SELECT _offset::DOUBLE FROM read_parquet('${item.path}')`)).getRows().map((r) => r[0] as number);
            expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
          }
        }
      } finally {
        reader.closeSync();
      }
      const records = (await registry.getSingleMetric('lambda_archiver_records_total')!.get()).values;
      const count = (result: string) => records.find((v) => v.labels['result'] === result)?.value;
      expect(count('archived')).toBe(produced.filter((r) => r.event).length);
      expect(count('rejected')).toBe(produced.filter((r) => !r.event).length);
      const status = await archiver.status();
      expect(status.partitions.map((s) => s.archivedEndExclusive)).toEqual(ends);
      expect(status.gaps).toEqual([]);
    } finally {
      await archiver.stop();
      duckdb.closeSync();
    }
  });

  it('records offsets deleted by retention before they were archived as a gap: logged with its range, in status and metrics', async () => {
    const topic = randomTopicName('retention');
    await broker.createTopic(topic, 1);
    const layout = new StorageLayout(tempDir());
    const random = seededRandom(5);
    const produced: ProducedRecord[] = [];
    const lines: string[] = [];
    const capture = createLogger('gap-test', { level: 'error' });
    const spy = Object.assign(Object.create(capture), {
      error: (obj: unknown, msg?: string) => lines.push(JSON.stringify({ ...(obj as object), msg })),
    }) as typeof capture;
    const start = async (registry: Registry) => {
      const archiver = await Archiver.create({
        source: new KafkaRecordSource({ brokers: broker.brokers, topic }, logger),
        layout,
        schema: loaded.schema,
        groupId: `${topic}-archiver-${Math.random()}`,
        logger: spy,
        metrics: registry,
        flush: { maxRecords: 1_000, intervalMs: 200 },
        compaction: false,
      });
      await archiver.start();
      return archiver;
    };

    // Archive the first 500 records, then stop.
    produced.push(...(await produceClicks(producer, topic, 0, 500, random, { padTo: 1_000 })));
    const first = await start(new Registry());
    await waitFor('first records archived', async () => (await archivedEnd(layout, topic, 0)) === 500, 20_000);
    await first.stop();

    // While no archiver runs, the broker's retention (~5 MiB) deletes offsets never archived.
    for (let i = 0; i < 9; i++) produced.push(...(await produceClicks(producer, topic, 0, 1_000, random, { padTo: 1_000 })));
    const highWatermark = 500 + 9_000;
    const registry = new Registry();
    const second = await start(registry);
    try {
      await waitFor('archive caught up', async () => (await archivedEnd(layout, topic, 0)) === highWatermark, 30_000);
      const status = await second.status();
      expect(status.gaps).toHaveLength(1);
      const gap = status.gaps[0]!;
      expect(gap.partition).toBe(0);
      expect(gap.fromOffset).toBe(500);
      expect(gap.toOffsetExclusive).toBeGreaterThan(500);
      expect(status.gapOffsets).toBe(gap.toOffsetExclusive - 500);
      const metric = (await registry.getSingleMetric('lambda_archiver_gap_offsets_total')!.get()).values;
      expect(metric.reduce((s, v) => s + v.value, 0)).toBe(status.gapOffsets);
      expect(lines.some((l) => l.includes('"fromOffset":500') && l.includes(`"toOffsetExclusive":${gap.toOffsetExclusive}`))).toBe(true);
      await expectArchiveHolds(layout, topic, 0, produced, { endExclusive: highWatermark, gaps: [[500, gap.toOffsetExclusive]] });
    } finally {
      await second.stop();
    }
  });
});
