import { createServer, type Server } from 'node:http';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import type { NotificationPayload } from '../../serving-layer/alerts/alert-record.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { freePort, KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { testKafka } from './fixtures/speed-kafka.ts';

const logger = createLogger('alerts-speed-listener-test', { level: 'error' });

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('alerting attached to the speed layer', () => {
  const topic = randomTopicName('alerts-listener');
  let broker: KafkaTestBroker;
  let producer: Producer;
  let receiver: Server;
  let webhookUrl: string;
  const received: NotificationPayload[] = [];

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 1 });
    await broker.createTopic(topic, 2);
    producer = testKafka(broker.brokers).producer();
    await producer.connect();
    const port = await freePort();
    webhookUrl = `http://127.0.0.1:${port}/hook`;
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        received.push(JSON.parse(body) as NotificationPayload);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve));
  }, 60_000);

  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    receiver?.closeAllConnections();
    await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
    await broker?.stop();
  });

  it('evaluates after each micro-batch through the listener alone (no clock), from the window cache, with exact values', async () => {
    const loaded = parseConfig(`
source:
  kafka: {brokers: [${broker.brokers.map((b) => `"${b}"`).join(', ')}], topic: ${topic}}
  timestamp: ts
  schema: {ts: TIMESTAMP, host: VARCHAR, errors: INTEGER}
speed: {interval: 100ms}
views:
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors), events: count(*)}}
alerts:
  error_burst: {view: errors_10s, window: 1m, condition: "errors > 5", notify: [{webhook: "${webhookUrl}", timeout: 1s}]}
`);
    const db = await ServingDatabase.create(loaded);
    const speed = await SpeedLayer.create({ loaded, source: new KafkaRecordSource({ brokers: [...broker.brokers], topic }, logger), instance: db.instance, logger });
    const alerting = await Alerting.start({ loaded, database: db, storageDir: ':memory:', logger });
    speed.addListener(alerting.realtimeListener());
    const produced: { host: string; errors: number }[] = [];
    const produce = async (events: { host: string; errors: number }[]) => {
      produced.push(...events);
      const ts = new Date().toISOString();
      await producer.send({ topic, messages: events.map((e, i) => ({ value: JSON.stringify({ ts, ...e }), partition: i % 2 })) });
    };
    const sumOf = (host: string) => produced.filter((e) => e.host === host).reduce((sum, e) => sum + e.errors, 0);
    try {
      await speed.start();
      // h1 crosses the threshold at once; h2 only with a later micro-batch (folded into the cache
      // built by the first one).
      await produce([{ host: 'h1', errors: 4 }, { host: 'h1', errors: 5 }, { host: 'h2', errors: 3 }]);
      await waitFor('h1 firing', () => received.some((p) => p.key.host === 'h1'), 30_000);
      await produce([{ host: 'h2', errors: 3 }, { host: 'h3', errors: 1 }]);
      await waitFor('h2 firing', () => received.some((p) => p.key.host === 'h2'), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 500));

      expect(received.map((p) => `${String(p.key.host)} ${p.state}`)).toEqual(['h1 firing', 'h2 firing']);
      expect(received.find((p) => p.key.host === 'h1')!.value).toEqual({ errors: sumOf('h1'), events: 2 });
      expect(received.find((p) => p.key.host === 'h2')!.value).toEqual({ errors: sumOf('h2'), events: 2 });
      const reader = await db.connect();
      try {
        const rows = (await reader.runAndReadAll('SELECT sum(errors__sum)::INTEGER FROM (SELECT * FROM "__alert_window__errors_10s" UNION ALL BY NAME SELECT * EXCLUDE (_fold) FROM "__alert_window_appended__errors_10s")')).getRowsJS();
        expect(rows[0]?.[0]).toBe(sumOf('h1') + sumOf('h2') + sumOf('h3'));
      } finally {
        reader.closeSync();
      }
      expect(alerting.evaluator.lastEvaluation).not.toBeNull();
    } finally {
      await speed.stop();
      await alerting.close();
      db.close();
    }
  }, 90_000);
});
