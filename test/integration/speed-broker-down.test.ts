import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { randomTopicName } from '../harness/index.ts';
import { SpeedFaultRig } from './fixtures/speed-fault-rig.ts';
import { waitFor, waitForSpeedLayer } from './fixtures/speed-kafka.ts';

const PARTITIONS = 4;
const logger = createLogger('speed-broker-down-test', { level: process.env.SPEED_TEST_LOG ?? 'silent' });

describe('Speed layer while a leader broker is down', () => {
  let rig: SpeedFaultRig;
  const all = [...Array(PARTITIONS).keys()];

  beforeAll(async () => {
    rig = await SpeedFaultRig.start({ topic: randomTopicName('speed-down'), partitions: PARTITIONS, brokers: 3, logger });
    await rig.produce(400, all);
    await waitForSpeedLayer(rig.kafka, rig.topic, rig.committedOf);
  });

  afterAll(async () => {
    await rig?.stop();
  });

  it('keeps reading the partitions still up, and the others once the broker is back, counting nothing twice', async () => {
    const down = await rig.leaderOf(0);
    const led: number[] = [];
    for (const p of all) if ((await rig.leaderOf(p)) === down) led.push(p);
    const up = all.filter((p) => !led.includes(p));
    await rig.broker.brokerDown(down);
    try {
      if (up.length > 0) {
        await rig.produce(300, up);
        await waitFor('the partitions still up to be read', () => up.every((p) => rig.committedOf(p) >= rig.produced.filter((r) => r.partition === p).length), 20_000);
      }
      await sleep(500);
    } finally {
      await rig.broker.brokerUp(down);
    }
    await rig.produce(400, all);
    await rig.expectExact(25_000);
    expect(rig.speed.status().stalledPartitions).toBe(0);
  });
});
