import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import type { NotificationPayload } from '../../serving-layer/alerts/alert-record.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import { ViewFeeder } from '../support/view-feeder.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

const SECOND = 1_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);
const logger = createLogger('alerts-kafka-test', { level: 'error' });

describe('Kafka sink on the Kafka-protocol test broker', () => {
  const topic = randomTopicName('alerts');
  let broker: KafkaTestBroker;
  let kafka: Kafka;
  let consumer: Consumer;
  let dir: string;
  const consumed: { key: string; partition: number; payload: NotificationPayload; id: string }[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-kafka-'));
    broker = await KafkaTestBroker.start({ brokers: 1, topics: [{ name: topic, partitions: 3 }] });
    kafka = new Kafka({
      clientId: 'alerts-kafka-test',
      brokers: [...broker.brokers],
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, maxRetryTime: 500, retries: 3 },
      connectionTimeout: 1_000,
      requestTimeout: 3_000,
    });
  });

  /** Reads the topic from the beginning (started after the outage: a reader is not under test). */
  async function readTopic(): Promise<void> {
    consumer = kafka.consumer({ groupId: randomTopicName('alerts-reader'), maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        consumed.push({
          key: message.key!.toString(),
          partition,
          payload: JSON.parse(message.value!.toString()) as NotificationPayload,
          id: message.headers!['notification-id']!.toString(),
        });
      },
    });
  }

  afterAll(async () => {
    await consumer?.disconnect().catch(() => undefined);
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('produces every notification, keyed by instance and in order, also across a broker outage', async () => {
    // A Kafka sink produces to the source's cluster (source.kafka is required for it).
    const loaded = parseConfig(`
source: {kafka: {brokers: [${broker.brokers.map((b) => `"${b}"`).join(', ')}], topic: events-${topic}}, timestamp: ts, schema: {ts: TIMESTAMP, host: VARCHAR, errors: INTEGER}}
views:
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors)}}
alerts:
  error_burst:
    view: errors_10s
    condition: "errors > 5"
    notify: [{kafka: {topic: ${topic}}}, {log: true}]
`);
    const db = await ServingDatabase.create(loaded);
    const alerting = await Alerting.start({ loaded, database: db, storageDir: dir, kafka, logger, backoff: { initialMs: 50, maxMs: 500 } });
    const feeder = new ViewFeeder(db.adminConnection, loaded.schema, db.bound);
    const hosts = ['h1', 'h2', 'h3', 'h4'];
    let offset = 0;
    const step = async (i: number) => {
      const bucketMs = T0 + i * 10 * SECOND;
      await feeder.toRealtime(hosts.map((host, h) => ({ ts: bucketMs + SECOND, host, errors: (i + h) % 3 === 0 ? 9 : 0, offset: offset++ })));
      await alerting.evaluate(bucketMs + 2 * SECOND);
    };
    try {
      for (let i = 0; i < 6; i++) await step(i);
      await broker.brokerDown(1);
      for (let i = 6; i < 12; i++) await step(i);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const [kafkaSink, logSink] = (await alerting.api()).notifier.sinks;
      expect(kafkaSink!.pending).toBeGreaterThan(0); // held back while the broker is down
      expect(kafkaSink!.lastError).not.toBeNull();
      expect(logSink!.pending).toBe(0); // the other sink is not held back by it
      await broker.brokerUp(1);

      const reader = await db.connect();
      const expected = (await reader.runAndReadAll('SELECT id FROM alert_history WHERE notify ORDER BY seq')).getRowsJS().map(([id]) => String(id));
      reader.closeSync();
      expect(expected.length).toBeGreaterThan(20);
      await readTopic();
      await waitFor('every notification on the topic', () => new Set(consumed.map((c) => c.id)).size >= expected.length, 30_000);

      expect(new Set(consumed.map((c) => c.id))).toEqual(new Set(expected));
      for (const c of consumed) {
        expect(c.payload.id).toBe(c.id);
        expect(c.key).toBe(`error_burst:${JSON.stringify(c.payload.key)}`);
      }
      // One instance, one partition, in the order recorded (a retried send may repeat, never reorder).
      for (const host of hosts) {
        const mine = consumed.filter((c) => c.payload.key.host === host);
        expect(new Set(mine.map((c) => c.partition)).size).toBe(1);
        const order = expected.filter((id) => mine.some((c) => c.id === id));
        expect([...new Set(mine.map((c) => c.id))]).toEqual(order);
      }
      expect((await alerting.api()).notifier.sinks.map((s) => s.pending)).toEqual([0, 0]);
    } finally {
      await alerting.close();
      db.close();
    }
  }, 60_000);
});
