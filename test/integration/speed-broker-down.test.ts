import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { generateRecords, referenceViews, type GeneratedRecord } from '../../speed-layer/testing/foundation-events.ts';
import { createServingViews, foundationConfig, readFoundationViews } from '../../speed-layer/testing/foundation-views.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { expectTopicHoldsExactly, goodEvents, quickRejoinSource, testKafka, waitFor, waitForSpeedLayer, type ProducedRecord } from './fixtures/speed-kafka.ts';

const PARTITIONS = 4;
const logger = createLogger('speed-broker-down-test', { level: process.env.SPEED_TEST_LOG ?? 'silent' });

describe('Speed layer while a leader broker is down', () => {
  const topic = randomTopicName('speed-down');
  let broker: KafkaTestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let admin: Admin;
  let instance: DuckDBInstance;
  let serving: DuckDBConnection;
  let speed: SpeedLayer;
  const produced: ProducedRecord[] = [];

  /** One request per partition, only to the partitions given (those whose leader is up). */
  async function produce(count: number, partitions: readonly number[]): Promise<void> {
    const records: GeneratedRecord[] = generateRecords(count, { seed: produced.length + 1, badEvery: 20, startIndex: produced.length });
    for (const [k, partition] of partitions.entries()) {
      const mine = records.filter((_, i) => i % partitions.length === k);
      const [ack] = await producer.send({ topic, acks: -1, messages: mine.map((r) => ({ partition, value: r.value })) });
      mine.forEach((record, i) => produced.push({ partition, offset: Number(ack!.baseOffset) + i, record }));
    }
  }

  async function leaderOf(partition: number): Promise<number> {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return topics[0]!.partitions.find((p) => p.partitionId === partition)!.leader;
  }

  const committedOf = (partition: number) => speed.status().partitions.find((s) => s.partition === partition)?.committedOffset ?? 0;
  const all = [...Array(PARTITIONS).keys()];

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 3, topics: [{ name: topic, partitions: PARTITIONS }] });
    kafka = testKafka(broker.brokers);
    producer = kafka.producer({ allowAutoTopicCreation: false });
    admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    instance = await DuckDBInstance.create(':memory:');
    serving = await instance.connect();
    const loaded = foundationConfig({ topic, speed: { interval: '100ms', blockSize: 100 } });
    speed = await SpeedLayer.create({ loaded, source: quickRejoinSource(broker.brokers, topic, logger), instance, logger });
    await createServingViews(serving, speed.views);
    await speed.start();
    await produce(400, all);
    await waitForSpeedLayer(kafka, topic, committedOf);
  });

  afterAll(async () => {
    await speed?.stop();
    serving?.closeSync();
    instance?.closeSync();
    await Promise.allSettled([producer?.disconnect(), admin?.disconnect()]);
    await broker?.stop();
  });

  it('keeps reading the partitions still up, and the others once the broker is back, counting nothing twice', async () => {
    const down = await leaderOf(0);
    const led: number[] = [];
    for (const p of all) if ((await leaderOf(p)) === down) led.push(p);
    const up = all.filter((p) => !led.includes(p));
    await broker.brokerDown(down);
    try {
      if (up.length > 0) {
        await produce(300, up);
        await waitFor('the partitions still up to be read', () => up.every((p) => committedOf(p) >= produced.filter((r) => r.partition === p).length), 20_000);
      }
      await sleep(500);
    } finally {
      await broker.brokerUp(down);
    }
    await produce(400, all);
    await waitForSpeedLayer(kafka, topic, committedOf, 25_000);
    await expectTopicHoldsExactly(kafka, topic, produced);
    expect(await readFoundationViews(serving)).toEqual(referenceViews(goodEvents(produced)));
    expect(speed.status().rejected.total).toBe(produced.filter((p) => p.record.reject).length);
    expect(speed.status().stalledPartitions).toBe(0);
  });
});
