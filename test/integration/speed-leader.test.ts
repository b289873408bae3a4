import { afterAll, beforeAll, describe, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { randomTopicName } from '../harness/index.ts';
import { SpeedFaultRig } from './fixtures/speed-fault-rig.ts';
import { waitFor } from './fixtures/speed-kafka.ts';

const PARTITIONS = 4;
const logger = createLogger('speed-leader-test', { level: process.env.SPEED_TEST_LOG ?? 'silent' });

/**
 * A partition leader moving to another broker under a running speed layer: kafkajs finds the old
 * leader refusing fetches, refreshes metadata and rejoins its group (a few seconds on the mock).
 */
describe('Speed layer through a leader change', () => {
  let rig: SpeedFaultRig;

  beforeAll(async () => {
    rig = await SpeedFaultRig.start({ topic: randomTopicName('speed-leader'), partitions: PARTITIONS, brokers: 3, logger });
    await rig.produce(400);
    await waitFor('the first records', () => rig.speed.status().partitions.some((p) => p.committedOffset > 0), 20_000);
  });

  afterAll(async () => {
    await rig?.stop();
  });

  it('follows partition leaders moving to other brokers, counting nothing twice', async () => {
    for (let partition = 0; partition < PARTITIONS; partition += 2) {
      const leader = await rig.leaderOf(partition);
      await rig.broker.setLeader(rig.topic, partition, (leader % rig.broker.brokerCount) + 1);
    }
    await rig.produce(400);
    await rig.expectExact(35_000);
  });
});
