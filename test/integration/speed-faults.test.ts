import { afterAll, beforeAll, describe, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaApiKey, KafkaErrorCode, randomTopicName } from '../harness/index.ts';
import { SpeedFaultRig } from './fixtures/speed-fault-rig.ts';
import { waitFor } from './fixtures/speed-kafka.ts';

const logger = createLogger('speed-faults-test', { level: process.env.SPEED_TEST_LOG ?? 'silent' });

/**
 * Request errors under a running speed layer. kafkajs answers a stale-leader fetch error by
 * rejoining its consumer group, which the mock broker completes only after a rebalance delay of
 * seconds: the waits here allow for that.
 */
describe('Speed layer through Kafka request errors', () => {
  let rig: SpeedFaultRig;

  beforeAll(async () => {
    rig = await SpeedFaultRig.start({ topic: randomTopicName('speed-faults'), partitions: 4, brokers: 1, logger });
    await rig.produce(400);
    await waitFor('the first records', () => rig.speed.status().partitions.some((p) => p.committedOffset > 0), 20_000);
  });

  afterAll(async () => {
    await rig?.stop();
  });

  it('resumes by itself after fetch and metadata errors and dropped connections, counting nothing twice', async () => {
    await rig.broker.pushRequestErrors(KafkaApiKey.Fetch, KafkaErrorCode.Disconnect, 2);
    await rig.broker.pushRequestErrors(KafkaApiKey.Metadata, KafkaErrorCode.LeaderNotAvailable, 1);
    await rig.broker.pushRequestErrors(KafkaApiKey.Fetch, KafkaErrorCode.NotLeaderForPartition, 1);
    await rig.produce(600);
    await rig.expectExact(35_000);
  });
});
