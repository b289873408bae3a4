import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { Kafka, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { generateRecords, referenceViews } from '../../speed-layer/testing/foundation-events.ts';
import { createServingViews, foundationConfig, readFoundationViews } from '../../speed-layer/testing/foundation-views.ts';
import { KafkaApiKey, KafkaErrorCode, KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { expectTopicHoldsExactly, goodEvents, produceRecords, quickRejoinSource, testKafka, waitFor, waitForSpeedLayer, type ProducedRecord } from './fixtures/speed-kafka.ts';

const PARTITIONS = 4;
const logger = createLogger('speed-faults-test', { level: process.env.SPEED_TEST_LOG ?? 'silent' });

/**
 * Request errors under a running speed layer. kafkajs answers a stale-leader fetch error by
 * rejoining its consumer group, which the mock broker completes only after a rebalance delay of
 * seconds: the waits here allow for that.
 */
describe('Speed layer through Kafka request errors', () => {
  const topic = randomTopicName('speed-faults');
  let broker: KafkaTestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let instance: DuckDBInstance;
  let serving: DuckDBConnection;
  let speed: SpeedLayer;
  const produced: ProducedRecord[] = [];

  async function produce(count: number): Promise<void> {
    const records = generateRecords(count, { seed: produced.length + 1, badEvery: 20, startIndex: produced.length });
    produced.push(...(await produceRecords(producer, topic, PARTITIONS, records)));
  }

  const committedOf = (partition: number) => speed.status().partitions.find((s) => s.partition === partition)?.committedOffset ?? 0;

  /** Caught up, with views equal to a plain reduction over every record in the topic, once each. */
  async function expectExact(): Promise<void> {
    await waitForSpeedLayer(kafka, topic, committedOf, 35_000);
    await expectTopicHoldsExactly(kafka, topic, produced);
    expect(await readFoundationViews(serving)).toEqual(referenceViews(goodEvents(produced)));
    expect(speed.status().rejected.total).toBe(produced.filter((p) => p.record.reject).length);
  }

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 1, topics: [{ name: topic, partitions: PARTITIONS }] });
    kafka = testKafka(broker.brokers);
    producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    instance = await DuckDBInstance.create(':memory:');
    serving = await instance.connect();
    const loaded = foundationConfig({ topic, speed: { interval: '100ms', blockSize: 100 } });
    speed = await SpeedLayer.create({ loaded, source: quickRejoinSource(broker.brokers, topic, logger), instance, logger });
    await createServingViews(serving, speed.views);
    await speed.start();
    await produce(400);
    await waitFor('the first records', () => speed.status().partitions.some((p) => p.committedOffset > 0), 20_000);
  });

  afterAll(async () => {
    await speed?.stop();
    serving?.closeSync();
    instance?.closeSync();
    await producer?.disconnect();
    await broker?.stop();
  });

  it('resumes by itself after fetch and metadata errors and dropped connections, counting nothing twice', async () => {
    await broker.pushRequestErrors(KafkaApiKey.Fetch, KafkaErrorCode.Disconnect, 2);
    await broker.pushRequestErrors(KafkaApiKey.Metadata, KafkaErrorCode.LeaderNotAvailable, 1);
    await broker.pushRequestErrors(KafkaApiKey.Fetch, KafkaErrorCode.NotLeaderForPartition, 1);
    await produce(600);
    await expectExact();
  });
});
