import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { unpackRecords } from '../../core/source/packed-records.ts';
import type { SourceBatch, SourceGap, SourceSubscription } from '../../core/source/record-source.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

const PARTITIONS = 3;
const PER_PARTITION = 400;

/** Produces `count` records to one partition; returns the offsets the broker acked. */
async function produce(producer: Producer, topic: string, partition: number, count: number, size = 20): Promise<number[]> {
  const messages = Array.from({ length: count }, (_, i) => ({ partition, value: `${partition}:${i}:`.padEnd(size, 'x') }));
  const [ack] = await producer.send({ topic, acks: -1, messages });
  const base = Number(ack!.baseOffset);
  return messages.map((_, i) => base + i);
}

describe('KafkaRecordSource on the Kafka-protocol test broker', () => {
  const topic = randomTopicName('source');
  const logger = createLogger('test', { level: 'error' });
  let broker: KafkaTestBroker;
  let source: KafkaRecordSource;
  let producer: Producer;
  const acked = new Map<number, number[]>();
  const subscriptions: SourceSubscription[] = [];

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 1, topics: [{ name: topic, partitions: PARTITIONS }] });
    source = new KafkaRecordSource({ brokers: broker.brokers, topic }, logger);
    producer = source.client.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    for (let p = 0; p < PARTITIONS; p++) acked.set(p, await produce(producer, topic, p, PER_PARTITION));
  });

  afterAll(async () => {
    for (const s of subscriptions) await s.stop().catch(() => {});
    await producer?.disconnect();
    await broker?.stop();
  });

  it('reports partitions and log-end offsets', async () => {
    expect(await source.partitionCount()).toBe(PARTITIONS);
    const high = await source.highWatermarks();
    for (let p = 0; p < PARTITIONS; p++) expect(high.get(p)).toBe(Math.max(...acked.get(p)!) + 1);
  });

  it.each([
    ['on a fetch thread of its own', true],
    ['on the subscribing thread', false],
  ])('delivers every offset at or above each partition start exactly once, in order, and none below, %s', async (_, fetchThread) => {
    const starts = [0, 123, Math.max(...acked.get(2)!) + 1]; // partition 2 starts at its end: only new records
    const seen = new Map<number, number[]>();
    const subscription = await new KafkaRecordSource({ brokers: broker.brokers, topic, fetchThread }, logger).subscribe({
      groupId: `reader-${fetchThread}-${topic}`,
      startOffset: (p) => starts[p]!,
      onBatch: async (batch: SourceBatch) => {
        expect(batch.topic).toBe(topic);
        const list = seen.get(batch.partition) ?? [];
        const records = unpackRecords(batch.packed, batch.partition);
        list.push(...records.map((r) => r.offset));
        seen.set(batch.partition, list);
        for (const r of records) expect(r.value!.toString().startsWith(`${batch.partition}:`)).toBe(true);
      },
    });
    subscriptions.push(subscription);
    const later = await produce(producer, topic, 2, 50);
    acked.get(2)!.push(...later);
    const expected = (p: number) => acked.get(p)!.filter((o) => o >= starts[p]!);
    await waitFor('all records', () => [0, 1, 2].every((p) => (seen.get(p)?.length ?? 0) >= expected(p).length));
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let p = 0; p < PARTITIONS; p++) expect(seen.get(p) ?? []).toEqual(expected(p));
    expect([...subscription.assignedPartitions()]).toEqual([0, 1, 2]);
    await subscription.stop();
  });

  it.each([
    ['on a fetch thread of its own', true],
    ['on the subscribing thread', false],
  ])('reads a partition again from its start offset after the subscriber fails a batch, %s', async (_, fetchThread) => {
    // The subscriber's durable position is what it kept; it fails its first batch of partition 1
    // only after more records of that partition were produced (and, on a fetch thread, handed over).
    const kept = new Map<number, number[]>();
    let failed = false;
    const failedTopic = randomTopicName('failed-batch');
    await broker.createTopic(failedTopic, PARTITIONS);
    const produced = new Map<number, number[]>();
    for (let p = 0; p < PARTITIONS; p++) produced.set(p, await produce(producer, failedTopic, p, 100));
    const subscription = await new KafkaRecordSource({ brokers: broker.brokers, topic: failedTopic, fetchThread }, logger).subscribe({
      groupId: `failing-${fetchThread}-${failedTopic}`,
      startOffset: (p) => (kept.get(p)?.at(-1) ?? -1) + 1,
      onBatch: async (batch: SourceBatch) => {
        if (batch.partition === 1 && !failed) {
          failed = true;
          produced.get(1)!.push(...(await produce(producer, failedTopic, 1, 100)));
          await new Promise((resolve) => setTimeout(resolve, 500));
          throw new Error('the subscriber failed this batch');
        }
        kept.set(batch.partition, [...(kept.get(batch.partition) ?? []), ...batch.packed.offsets]);
      },
    });
    subscriptions.push(subscription);
    await waitFor('all records', () => [0, 1, 2].every((p) => (kept.get(p)?.length ?? 0) >= produced.get(p)!.length), 30_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(failed).toBe(true);
    for (let p = 0; p < PARTITIONS; p++) expect(kept.get(p)).toEqual(produced.get(p));
    await subscription.stop();
  });

  it.each([
    ['on a fetch thread of its own', true],
    ['on the subscribing thread', false],
  ])('keeps asking for a start offset that fails, and reads on after the subscriber fails to let go of partitions, %s', async (_, fetchThread) => {
    const seen = new Map<number, number[]>();
    const startFailures = new Map<number, number>();
    let revokeFailures = 0;
    const subscription = await new KafkaRecordSource({ brokers: broker.brokers, topic, fetchThread }, logger).subscribe({
      groupId: `stalling-${fetchThread}-${topic}`,
      selectedPartitions: [0, 1],
      // Partition 1's start is unknown for its first three asks (a store that is down).
      startOffset: (p) => {
        const failures = startFailures.get(p) ?? 0;
        if (p === 1 && failures < 3) {
          startFailures.set(p, failures + 1);
          throw new Error('the position store is down');
        }
        return 0;
      },
      onRevoke: () => {
        revokeFailures++;
        throw new Error('the subscriber cannot let go');
      },
      onBatch: async (batch: SourceBatch) => void seen.set(batch.partition, [...(seen.get(batch.partition) ?? []), ...batch.packed.offsets]),
    });
    subscriptions.push(subscription);
    const all = (p: number) => acked.get(p)!;
    await waitFor('partitions 0 and 1', () => [0, 1].every((p) => (seen.get(p)?.length ?? 0) >= all(p).length), 30_000);
    expect(startFailures.get(1)).toBe(3);
    await subscription.select([2]);
    expect(revokeFailures).toBe(1);
    await waitFor('partition 2 after the failed revocation', () => (seen.get(2)?.length ?? 0) >= all(2).length, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let p = 0; p < PARTITIONS; p++) expect(seen.get(p), `partition ${p}`).toEqual(all(p));
    await subscription.stop();
  });

  it('gives two subscribers with their own groups every partition each', async () => {
    const counts = [new Map<number, number>(), new Map<number, number>()];
    for (const [i, count] of counts.entries()) {
      subscriptions.push(
        await source.subscribe({
          groupId: `own-${i}-${topic}`,
          startOffset: () => 0,
          onBatch: async (b) => void count.set(b.partition, (count.get(b.partition) ?? 0) + b.packed.offsets.length),
        }),
      );
    }
    const total = [...acked.values()].reduce((n, offsets) => n + offsets.length, 0);
    const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    await waitFor('both subscribers to read everything', () => counts.every((c) => sum(c) >= total));
    for (const c of counts) expect(sum(c)).toBe(total);
  });

  it('reports offsets deleted by retention as a gap instead of skipping them silently', async () => {
    // The mock broker keeps ~5 MiB per partition: write 8 MiB so the first offsets are deleted.
    const gapTopic = randomTopicName('retention');
    await broker.createTopic(gapTopic, 1);
    const gapSource = new KafkaRecordSource({ brokers: broker.brokers, topic: gapTopic }, logger);
    for (let i = 0; i < 8; i++) await produce(producer, gapTopic, 0, 1024, 1024);
    const gaps: SourceGap[] = [];
    let firstOffset: number | undefined;
    const subscription = await gapSource.subscribe({
      groupId: `gap-${gapTopic}`,
      startOffset: () => 0,
      onGap: (gap) => gaps.push(gap),
      onBatch: async (b) => void (firstOffset ??= b.packed.offsets[0]),
    });
    subscriptions.push(subscription);
    await waitFor('the first batch', () => firstOffset !== undefined);
    expect(firstOffset).toBeGreaterThan(0);
    expect(gaps).toEqual([{ partition: 0, fromOffset: 0, toOffsetExclusive: firstOffset }]);
  });
});
