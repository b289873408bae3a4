import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import type { StatusInfo } from '../../serving-layer/http/api-types.ts';
import type { LambdaProcess } from '../harness/index.ts';
import { ClusterRig } from './fixtures/cluster-rig.ts';
import { runLiveDefinitionsScenario } from './fixtures/live-definitions-scenario.ts';
import { receiverPerSuite } from '../support/webhook-receiver.ts';

/**
 * Issue 16 as the README deploys it: `lambda start` processes on one ZooKeeper and one shared
 * storage dir, two query nodes (`--roles speed,serving`) and a batch node (`--roles
 * archiver,batch`), events with late and malformed records flowing through Kafka. Definitions
 * changed on one query node are followed by both without a restart, each new definition exact
 * over every event since offset 0 once served; the batch node backfills at once.
 */
describe('definitions followed without a restart, in a cluster of processes', () => {
  const suite = receiverPerSuite('lambda-live-hook-');
  let rig: ClusterRig;
  let nodes: LambdaProcess[];
  let producer: Producer;
  let passed = false;

  beforeAll(async () => {
    rig = await ClusterRig.start({ name: 'live-definitions' });
    nodes = await rig.startNodes([
      { nodeId: 'batch-1', roles: ['archiver', 'batch'] },
      { nodeId: 'query-1', roles: ['speed', 'serving'] },
      { nodeId: 'query-2', roles: ['speed', 'serving'] },
    ]);
    producer = new KafkaRecordSource({ brokers: rig.broker.brokers, topic: rig.topic }, createLogger('test', { level: 'error' })).client.producer();
    await producer.connect();
  }, 120_000);

  afterAll(async () => {
    await producer?.disconnect();
    await rig?.stop({ keepDir: !passed });
  });

  it('two query nodes serve an added view exactly, follow a changed measure and a removal, while the other views keep serving', async () => {
    const [, query1, query2] = nodes;
    await runLiveDefinitionsScenario({
      urls: [query1!.url!, query2!.url!],
      adminUrl: query2!.url!,
      receiver: suite.receiver,
      async send(lines) {
        for (let partition = 0; partition < rig.partitions; partition++) {
          const messages = lines.filter((_, i) => i % rig.partitions === partition).map((value) => ({ value, partition }));
          await producer.send({ topic: rig.topic, acks: -1, messages });
        }
      },
    });
    // Every member runs the newest version, as the status of any node shows.
    const published = (await query1!.getJson<{ version: number }>('/v1/definitions')).version;
    const status = await query1!.getJson<StatusInfo>('/v1/status');
    expect(status.members.map((m) => [m.id, m.definitionsVersion]).sort()).toEqual([
      ['batch-1', published],
      ['query-1', published],
      ['query-2', published],
    ]);
    passed = true;
  }, 180_000);
});
