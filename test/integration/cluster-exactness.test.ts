import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { KafkaTestBroker, randomTopicName, ZooKeeperTestServer } from '../harness/index.ts';
import { runExactnessScenario, scenarioConfigYaml } from './fixtures/exactness-scenario.ts';

/**
 * The exactness scenario in cluster mode: Kafka (the librdkafka mock cluster, 4 partitions) and
 * ZooKeeper (Debian's 3.8 server); the node is batch master, archiver, speed and serving layer.
 * Malformed records go through Kafka like the rest and must each be rejected exactly once.
 */
describe('cluster mode, end to end', () => {
  const topic = randomTopicName('exact');
  const logger = createLogger('test', { level: 'error' });
  let dir: string;
  let broker: KafkaTestBroker;
  let zookeeper: ZooKeeperTestServer;
  let node: LambdaNode;
  let producer: Producer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-cluster-'));
    [broker, zookeeper] = await Promise.all([KafkaTestBroker.start({ brokers: 1, topics: [{ name: topic, partitions: 4 }] }), ZooKeeperTestServer.start()]);
    const cluster = `
zookeeper: {connect: "${zookeeper.connectString}", root: /lambda/${topic.replaceAll('-', '_')}, sessionTimeout: 4s}`;
    const yaml = scenarioConfigYaml(dir, cluster, { allEventsView: true }).replace('source:\n  timestamp: ts', `source:\n  kafka: {brokers: ${JSON.stringify(broker.brokers)}, topic: ${topic}}\n  timestamp: ts`);
    node = await LambdaNode.start({ loaded: parseConfig(yaml), roles: [...ALL_ROLES], logger });
    producer = new KafkaRecordSource({ brokers: broker.brokers, topic }, logger).client.producer();
    await producer.connect();
  }, 60_000);

  afterAll(async () => {
    await producer?.disconnect();
    await node?.stop();
    await broker?.stop();
    await zookeeper?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers every view, events and rejected exactly while batches are recomputed and swapped in, and rejects each malformed record once', async () => {
    await runExactnessScenario(
      {
        url: node.url!,
        partitions: 4,
        refusesMalformed: false,
        async send(lines) {
          // One partition per request (see the harness test on kafkajs acks), keyed round-robin.
          for (let partition = 0; partition < 4; partition++) {
            const messages = lines.filter((_, i) => i % 4 === partition).map((value) => ({ value, partition }));
            await producer.send({ topic, acks: -1, messages });
          }
        },
      },
    );
  }, 180_000);
});
