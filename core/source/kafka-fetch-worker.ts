/**
 * Worker-thread entry of the Kafka fetch thread (kafka-fetch-thread.ts): a consumer on this
 * thread whose batches, start offsets, revocations and gaps are calls to the subscribing thread.
 * Each batch's buffers are transferred, not copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../observability/logger.ts';
import { ThreadChannel, type FetchedBatch, type FetchWorkerData } from './kafka-fetch-thread.ts';
import { KafkaRecordSource } from './kafka-record-source.ts';
import { transferList } from './packed-records.ts';
import type { SourceSubscription } from './record-source.ts';

const data = workerData as FetchWorkerData;
const { pid: _pid, name: _name, ...bindings } = data.logBindings;
const logger = createLogger('lambda', { level: data.logLevel }).child({ ...bindings, thread: 'kafka-fetch' });
let subscription: SourceSubscription | undefined;
const channel = new ThreadChannel(parentPort!, {
  stop: async () => {
    await subscription?.stop();
  },
});

try {
  const source = new KafkaRecordSource(data.settings, logger);
  subscription = await source.subscribeHere(
    {
      groupId: data.groupId,
      startOffset: (partition) => channel.call<number>('startOffset', partition),
      onBatch: ({ partition, packed, highWatermark }) => channel.call<void>('batch', { partition, packed, highWatermark } satisfies FetchedBatch, transferList(packed)),
      onRevoke: (partitions) => channel.call<void>('revoke', partitions),
      onGap: (gap) => channel.report('gap', gap),
    },
    data.tuning,
    (partitions) => channel.report('assigned', partitions),
  );
  channel.report('ready');
} catch (error) {
  channel.report('failed', error instanceof Error ? error.message : String(error));
}
