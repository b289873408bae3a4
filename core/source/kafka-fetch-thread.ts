import { Worker, type MessagePort } from 'node:worker_threads';
import { withTimeout } from '../async/with-timeout.ts';
import { SourceError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { KafkaSourceSettings, KafkaSubscribeTuning } from './kafka-record-source.ts';
import type { PackedRecords } from './packed-records.ts';
import type { SourceGap, SourceSubscription, SubscribeOptions } from './record-source.ts';

/**
 * A Kafka subscription whose consumer runs on a worker thread (kafka-fetch-worker.ts). The Kafka
 * client decodes every record of every fetch into objects: on the thread that also stages
 * micro-batches, answers queries and evaluates alerts, that decoding and its garbage took more
 * time than all the rest. On its own thread it runs beside them, and each fetched batch comes
 * over packed in transferable buffers (no copy, no object per record).
 *
 * The subscriber's callbacks still run here, on the subscribing thread, with the same contract as
 * on a consumer of this thread: `onBatch` is called for a partition's next batch once its promise
 * for the one before has settled, and `startOffset` on every assignment. The worker does not wait
 * for that (see kafka-fetch-worker.ts): the batches it handed over queue here, per partition.
 */

/** What the worker is started with (structured-cloned into it). */
export interface FetchWorkerData {
  readonly settings: KafkaSourceSettings;
  readonly groupId: string;
  readonly selectedPartitions?: readonly number[];
  readonly tuning: KafkaSubscribeTuning;
  readonly logLevel: string;
  readonly logBindings: Record<string, unknown>;
}

/** A batch as it crosses threads: the SourceBatch without its topic, with its partition's generation. */
export interface FetchedBatch {
  readonly partition: number;
  readonly packed: PackedRecords;
  readonly highWatermark: number;
  /** Raised by the worker each time the subscriber fails a batch of this partition. */
  readonly generation: number;
}

type Envelope =
  | { readonly kind: 'call'; readonly id: number; readonly method: string; readonly arg: unknown }
  | { readonly kind: 'result'; readonly id: number; readonly value?: unknown; readonly error?: string }
  | { readonly kind: 'report'; readonly method: string; readonly arg: unknown };

/** What one side of a ThreadChannel answers, by method name. */
export type Handlers = Record<string, (arg: any) => unknown>;

/**
 * Calls across a thread boundary: `call` resolves with what the other side's handler returned
 * (or rejects with its error message), `report` expects no answer. Handlers run one message at a
 * time as they arrive, but a handler's promise may still be pending when the next one starts.
 */
export class ThreadChannel {
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;

  constructor(
    private readonly port: Worker | MessagePort,
    handlers: Handlers,
  ) {
    port.on('message', (message: Envelope) => {
      if (message.kind === 'result') {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error !== undefined) waiter?.reject(new SourceError(message.error));
        else waiter?.resolve(message.value);
        return;
      }
      const handler = handlers[message.method];
      if (message.kind === 'report') {
        handler?.(message.arg);
        return;
      }
      const { id } = message;
      Promise.resolve()
        .then(() => {
          if (!handler) throw new Error(`no handler for ${message.method}`);
          return handler(message.arg);
        })
        .then(
          (value) => port.postMessage({ kind: 'result', id, value } satisfies Envelope),
          (error: unknown) => port.postMessage({ kind: 'result', id, error: error instanceof Error ? error.message : String(error) } satisfies Envelope),
        );
    });
  }

  call<R>(method: string, arg: unknown, transfer: readonly ArrayBuffer[] = []): Promise<R> {
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.port.postMessage({ kind: 'call', id, method, arg } satisfies Envelope, transfer);
    });
  }

  report(method: string, arg?: unknown): void {
    this.port.postMessage({ kind: 'report', method, arg } satisfies Envelope);
  }

  /** Rejects every call still waiting for an answer (the other side is gone). */
  failPending(error: Error): void {
    for (const waiter of this.pending.values()) waiter.reject(error);
    this.pending.clear();
  }
}

const WORKER_URL = new URL('./kafka-fetch-worker.mjs', import.meta.url);
/**
 * How long the consumer may take to leave its group before its thread is terminated. With a live
 * broker it takes one fetch wait (250 ms) and a LeaveGroup; with the brokers gone it never ends,
 * and this is spent out of node.shutdownTimeout. Not leaving costs a restarted node at most the
 * group's session timeout before it reads again.
 */
const FETCH_THREAD_STOP_TIMEOUT_MS = 2_000;
/**
 * The worker's young generation: V8 splits it in three (two semi-spaces and a large-object
 * space), so 48 MiB are V8's default semi-spaces of 16 MiB, whatever the process's flags; larger
 * ones bought no throughput, only memory.
 */
const FETCH_WORKER_YOUNG_GENERATION_MB = 48;

/** Subscribes on a new worker thread; resolves once its consumer is running, as `subscribe` does. */
export async function startFetchThread(
  settings: KafkaSourceSettings,
  options: SubscribeOptions,
  tuning: KafkaSubscribeTuning,
  logger: Logger,
): Promise<SourceSubscription> {
  const data: FetchWorkerData = {
    settings,
    groupId: options.groupId,
    ...(options.selectedPartitions ? { selectedPartitions: [...options.selectedPartitions] } : {}),
    tuning,
    logLevel: logger.level,
    logBindings: logger.bindings(),
  };
  const worker = new Worker(WORKER_URL, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: FETCH_WORKER_YOUNG_GENERATION_MB } });
  let assigned: readonly number[] = [];
  let stopping = false;
  let ready: (() => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  const started = new Promise<void>((resolve, reject) => ((ready = resolve), (failed = reject)));
  // Per partition: the batch handed over last (settled once the subscriber is done with it), and
  // the newest generation of which the subscriber failed a batch (its later batches are dropped).
  const lastBatch = new Map<number, Promise<void>>();
  const failedGeneration = new Map<number, number>();
  const takeBatch = async ({ partition, packed, highWatermark, generation }: FetchedBatch): Promise<void> => {
    if (generation <= (failedGeneration.get(partition) ?? -1)) return;
    try {
      await options.onBatch({ topic: settings.topic, partition, packed, highWatermark });
    } catch (error) {
      failedGeneration.set(partition, generation);
      throw error;
    }
  };
  // The worker's calls (answered) and reports (not); see kafka-fetch-worker.ts.
  const channel = new ThreadChannel(worker, {
    startOffset: (partition: number) => options.startOffset(partition),
    batch: (batch: FetchedBatch) => {
      const taken = (lastBatch.get(batch.partition) ?? Promise.resolve()).then(() => takeBatch(batch));
      // Ignored here: the worker gets the failure through `taken`; this chain only orders the partition's batches.
      lastBatch.set(batch.partition, taken.catch(() => undefined));
      return taken;
    },
    revoke: async (partitions: number[]) => {
      // After the batches of those partitions handed over before, as on a consumer of this thread.
      await Promise.all(partitions.map((partition) => lastBatch.get(partition)));
      return options.onRevoke?.(partitions);
    },
    gap: (gap: SourceGap) => options.onGap?.(gap),
    assigned: (partitions: number[]) => void (assigned = partitions),
    ready: () => ready!(),
    failed: (message: string) => failed!(new SourceError(`cannot consume topic "${settings.topic}": ${message}`)),
  });
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', (code) => {
      const error = new SourceError(`the Kafka fetch thread exited (code ${code})`);
      channel.failPending(error);
      failed!(error);
      if (!stopping) logger.error({ topic: settings.topic, code }, 'the Kafka fetch thread exited; nothing more is read from the topic');
      resolve();
    });
  });
  worker.on('error', (error) => logger.error({ err: error, topic: settings.topic }, 'the Kafka fetch thread failed'));
  try {
    await started;
  } catch (error) {
    stopping = true;
    await worker.terminate();
    throw error;
  }
  return {
    assignedPartitions: () => assigned,
    select: (partitions) => channel.call<void>('select', [...partitions]),
    async stop() {
      if (stopping) return exited;
      stopping = true;
      try {
        // Leaving the group needs the brokers; when they are gone the thread is simply ended.
        await withTimeout(channel.call<void>('stop', undefined), FETCH_THREAD_STOP_TIMEOUT_MS, 'stopping the Kafka consumer');
      } catch (error) {
        logger.warn({ err: error }, 'stopping the Kafka fetch thread failed; terminating it');
      }
      await worker.terminate();
      await exited;
      // What was handed over before the consumer stopped is still taken, as on a consumer of this thread.
      await Promise.all(lastBatch.values());
    },
  };
}
