/**
 * Worker-thread entry of the Kafka fetch thread (kafka-fetch-thread.ts): a consumer on this
 * thread whose batches, start offsets, revocations and gaps are calls to the subscribing thread.
 * Each batch's buffers are transferred, not copied.
 *
 * Batches are handed over without waiting for the subscriber to take them, up to
 * HAND_OVER_WINDOW_BYTES not taken yet: waiting would idle the consumer whenever the subscribing
 * thread's event loop is busy (staging a micro-batch). The
 * subscribing side keeps each partition's batches in order. When the subscriber fails a batch,
 * the batches handed over after it are dropped there, and the partition is read again from its
 * start offset (a new generation of the partition's batches).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../observability/logger.ts';
import { ThreadChannel, type FetchedBatch, type FetchWorkerData } from './kafka-fetch-thread.ts';
import { KafkaRecordSource, type RepositionableSubscription } from './kafka-record-source.ts';
import { transferList, type PackedRecords } from './packed-records.ts';

/** Bytes of batches (values, offsets, timestamps) handed over and not yet taken, beyond which the consumer waits. */
const HAND_OVER_WINDOW_BYTES = 16 * 1024 * 1024;

const data = workerData as FetchWorkerData;
const { pid: _pid, name: _name, ...bindings } = data.logBindings;
const logger = createLogger('lambda', { level: data.logLevel }).child({ ...bindings, thread: 'kafka-fetch' });
let subscription: RepositionableSubscription | undefined;
/** Batches' bytes handed over and not taken yet, and who waits for them to go below the window. */
let handedOverBytes = 0;
let waiting: (() => void)[] = [];
/** Per partition, the generation its batches are handed over with (see the top of this file). */
const generations = new Map<number, number>();
const channel = new ThreadChannel(parentPort!, {
  stop: async () => {
    await subscription?.stop();
  },
  select: async (partitions: number[]) => {
    if (!subscription) throw new Error('the consumer has not started');
    await subscription.select(partitions);
  },
});

try {
  const source = new KafkaRecordSource(data.settings, logger);
  subscription = await source.subscribeHere(
    {
      groupId: data.groupId,
      ...(data.selectedPartitions ? { selectedPartitions: data.selectedPartitions } : {}),
      startOffset: (partition) => channel.call<number>('startOffset', partition),
      onBatch: ({ partition, packed, highWatermark }) => handOver(partition, packed, highWatermark),
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

async function handOver(partition: number, packed: PackedRecords, highWatermark: number): Promise<void> {
  const generation = generations.get(partition) ?? 0;
  const buffers = transferList(packed);
  // Counted before the transfer empties them.
  const bytes = buffers.reduce((sum, buffer) => sum + buffer.byteLength, 0);
  handedOverBytes += bytes;
  const batch: FetchedBatch = { partition, packed, highWatermark, generation };
  channel.call<void>('batch', batch, buffers).then(
    () => taken(bytes),
    (error: unknown) => {
      taken(bytes);
      if ((generations.get(partition) ?? 0) !== generation) return;
      generations.set(partition, generation + 1);
      logger.error({ err: error, partition }, 'the subscriber failed a batch; reading the partition again from its start offset');
      subscription?.reposition(partition);
    },
  );
  while (handedOverBytes > HAND_OVER_WINDOW_BYTES) await new Promise<void>((resolve) => waiting.push(resolve));
}

function taken(bytes: number): void {
  handedOverBytes -= bytes;
  if (handedOverBytes > HAND_OVER_WINDOW_BYTES) return;
  const wake = waiting;
  waiting = [];
  for (const resolve of wake) resolve();
}
