import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { freePort, KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { testKafka } from './fixtures/speed-kafka.ts';
import { waitFor } from '../harness/wait-for.ts';

const logger = createLogger('alerts-speed-listener-test', { level: 'error' });

describe('alerting attached to the speed layer', () => {
  const topic = randomTopicName('alerts-listener');
  let broker: KafkaTestBroker;
  let producer: Producer;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 1 });
    await broker.createTopic(topic, 2);
    producer = testKafka(broker.brokers).producer();
    await producer.connect();
    receiver = new WebhookReceiver(await freePort());
    await receiver.up();
  }, 60_000);

  afterAll(async () => {
    await producer?.disconnect().catch(() => undefined);
    await receiver?.down();
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
  error_burst: {view: errors_10s, window: 1m, condition: "errors > 5", notify: [{webhook: "${receiver.url}", timeout: 1s}]}
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
      await waitFor('h1 firing', () => receiver.received.some((p) => p.key.host === 'h1'), 30_000);
      await produce([{ host: 'h2', errors: 3 }, { host: 'h3', errors: 1 }]);
      await waitFor('h2 firing', () => receiver.received.some((p) => p.key.host === 'h2'), 30_000);
      await new Promise((resolve) => setTimeout(resolve, 500));

      expect(receiver.received.map((p) => `${String(p.key.host)} ${p.state}`)).toEqual(['h1 firing', 'h2 firing']);
      expect(receiver.received.find((p) => p.key.host === 'h1')!.value).toEqual({ errors: sumOf('h1'), events: 2 });
      expect(receiver.received.find((p) => p.key.host === 'h2')!.value).toEqual({ errors: sumOf('h2'), events: 2 });
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
  it('keeps its windows through a batch handoff of the same definition, rebuilds them when the batch holds another definition', async () => {
    const handoffTopic = randomTopicName('alerts-handoff');
    await broker.createTopic(handoffTopic, 2);
    const loaded = parseConfig(`
source:
  kafka: {brokers: [${broker.brokers.map((b) => `"${b}"`).join(', ')}], topic: ${handoffTopic}}
  timestamp: ts
  schema: {ts: TIMESTAMP, host: VARCHAR, errors: INTEGER}
speed: {interval: 100ms, blockSize: 2}
views:
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors), events: count(*)}}
alerts:
  error_burst: {view: errors_10s, window: 1m, condition: "errors > 1000", notify: [{log: true}]}
`);
    const db = await ServingDatabase.create(loaded);
    const speed = await SpeedLayer.create({ loaded, source: new KafkaRecordSource({ brokers: [...broker.brokers], topic: handoffTopic }, logger), instance: db.instance, logger });
    const alerting = await Alerting.start({ loaded, database: db, storageDir: ':memory:', logger });
    speed.addListener(alerting.realtimeListener());
    const cache = alerting.windowCache('errors_10s')!;
    const produced: number[] = [];
    const offsets = new Map<number, number>();
    const produce = async (count: number) => {
      const ts = new Date().toISOString();
      const events = Array.from({ length: count }, (_, i) => ({ host: `h${i % 3}`, errors: (produced.length + i) % 7, partition: i % 2 }));
      for (const e of events) {
        produced.push(e.errors);
        offsets.set(e.partition, (offsets.get(e.partition) ?? 0) + 1);
      }
      await producer.send({ topic: handoffTopic, messages: events.map((e) => ({ value: JSON.stringify({ ts, host: e.host, errors: e.errors }), partition: e.partition })) });
    };
    const expected = () => produced.reduce((a, b) => a + b, 0);
    const reader = await db.connect();
    const cachedSum = async () =>
      Number(
        (
          await reader.runAndReadAll(
            'SELECT coalesce(sum(errors__sum), 0)::BIGINT FROM (SELECT * FROM "__alert_window__errors_10s" UNION ALL BY NAME SELECT * EXCLUDE (_fold) FROM "__alert_window_appended__errors_10s")',
          )
        ).getRowsJS()[0]?.[0],
      );
    const realtimeRows = async () => Number((await reader.runAndReadAll('SELECT count(*) FROM realtime__errors_10s')).getRowsJS()[0]?.[0]);
    const view = speed.views[0]!.view;
    const columns = [...view.keyColumns, ...view.stateColumns.map((c) => c.name)].map((c) => `"${c}"`).join(', ');
    let version = 0;
    // What a batch run does, in miniature: the realtime blocks below the cuts become batch rows.
    const handoff = async (definitionHash: string) => {
      const cuts = Object.fromEntries([...offsets].map(([p, next]) => [String(p), Math.floor(next / 2) * 2]));
      const below = Object.entries(cuts).map(([p, cut]) => `(_partition = ${p} AND _block * 2 < ${cut})`).join(' OR ');
      version++;
      const manifest: BatchManifest = {
        version, topic: handoffTopic, cuts, blockSize: 2, location: `batch/v${version}`, eventsRead: 0,
        views: { errors_10s: { definitionHash, file: 'none.parquet', rows: 0 } },
        startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(), durationMs: 0, producedBy: 'test',
      };
      await speed.applyBatch(manifest, async (tx) => {
        await tx.run(`INSERT INTO batch__errors_10s (${columns}) SELECT ${columns} FROM realtime__errors_10s WHERE ${below}`);
      });
    };
    try {
      await speed.start();
      await produce(40);
      await waitFor('the window cache built and holding every event', () => cache.isReady, 30_000);
      await waitFor('every event folded', () => speed.status().partitions.reduce((n, p) => n + p.committedOffset, 0) === produced.length, 30_000);
      expect(await cachedSum()).toBe(expected());
      const built = cache.snapshot().generation;
      const rowsBefore = await realtimeRows();

      await handoff(view.definitionHash);
      expect(await realtimeRows()).toBeLessThan(rowsBefore); // the handoff moved something
      await produce(10);
      await waitFor('the new events folded', () => speed.status().partitions.reduce((n, p) => n + p.committedOffset, 0) === produced.length, 30_000);
      expect(cache.snapshot().generation).toBe(built); // not rebuilt
      expect(await cachedSum()).toBe(expected());

      await handoff('another definition');
      await produce(10);
      await waitFor('the new events folded', () => speed.status().partitions.reduce((n, p) => n + p.committedOffset, 0) === produced.length, 30_000);
      await waitFor('a rebuild', () => cache.snapshot().generation > built, 30_000);
    } finally {
      reader.closeSync();
      await speed.stop();
      await alerting.close();
      db.close();
    }
  }, 90_000);
});
