import { Worker } from 'node:worker_threads';
import { withTimeout } from '../core/async/with-timeout.ts';
import { LambdaError } from '../core/errors/index.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { transferList, type PackedRecords } from '../core/source/packed-records.ts';
import type { CompactionOptions } from './segment-compactor.ts';
import type { FlushOptions, SegmentSink, SinkEvent } from './segment-sink.ts';
import type { SegmentFence } from './segment-writer.ts';

export interface SinkWorkerData {
  readonly index: number;
  readonly storageDir: string;
  readonly topic: string;
  readonly schema: EventSchema;
  readonly flush?: FlushOptions;
  readonly compaction: CompactionOptions | false;
  readonly concurrency: number;
  readonly logLevel?: string;
  /** Whether publishing asks this thread's fence first. */
  readonly fenced: boolean;
}

export type SinkRequest =
  | { readonly op: 'open'; readonly partition: number; readonly startOffset: number }
  | { readonly op: 'add'; readonly partition: number; readonly packed: PackedRecords }
  | { readonly op: 'gap'; readonly partition: number; readonly toOffsetExclusive: number }
  | { readonly op: 'release'; readonly partition: number; readonly id: number }
  | { readonly op: 'flush' | 'compact' | 'close' | 'halt'; readonly id: number }
  | { readonly op: 'fenced'; readonly fenceId: number; readonly error?: string };

export type SinkReply =
  | { op: 'ready' }
  | { op: 'event'; event: SinkEvent }
  | { op: 'done'; id: number; error?: string }
  /** The worker asks whether it may publish a file of the partition (SegmentFence); answered by `fenced`. */
  | { op: 'fence'; fenceId: number; partition: number };

const WORKER_URL = new URL('./segment-sink-worker.mjs', import.meta.url);
/** How long closing may take to write what the workers buffer before they are halted. */
const SINK_CLOSE_TIMEOUT_MS = 4_000;
/** How long a worker gets to interrupt and wait out its DuckDB statements before it is terminated anyway. */
const SINK_HALT_TIMEOUT_MS = 1_000;
/**
 * A worker's young generation (V8 splits it in three: two semi-spaces and a large-object space).
 * Decoding leaves a few short-lived objects per record; twice the default nursery means half the
 * scavenges, for at most 48 MiB more memory.
 */
const WORKER_YOUNG_GENERATION_MB = 96;

/**
 * The sink on worker threads: each partition belongs to one worker (partition mod workers), which
 * decodes, buffers and writes its segments; the packed records' buffers are transferred to it,
 * not copied. Requests to a worker are handled in the order sent, so a partition's
 * records, gaps and seals stay in order.
 */
export class WorkerSegmentSink implements SegmentSink {
  private readonly pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private readonly posted = new Map<number, number>();
  private readonly written = new Map<number, number>();
  private closed = false;
  private terminated = false;

  private constructor(
    private readonly workers: readonly Worker[],
    private readonly onEvent: (event: SinkEvent) => void,
    private readonly fence: SegmentFence | undefined,
    private readonly logger: Logger,
  ) {
    for (const worker of workers) worker.on('message', (reply: SinkReply) => this.onReply(worker, reply));
  }

  static async create(options: {
    readonly workers: number;
    readonly storageDir: string;
    readonly topic: string;
    readonly schema: EventSchema;
    readonly flush?: FlushOptions;
    readonly compaction: CompactionOptions | false;
    readonly logger: Logger;
    readonly onEvent: (event: SinkEvent) => void;
    /** Asked before each file is published (the workers ask this thread). */
    readonly fence?: SegmentFence;
  }): Promise<WorkerSegmentSink> {
    const workers = await Promise.all(
      Array.from({ length: options.workers }, async (_, index) => {
        const data: SinkWorkerData = {
          index,
          storageDir: options.storageDir,
          topic: options.topic,
          schema: options.schema,
          ...(options.flush ? { flush: options.flush } : {}),
          compaction: options.compaction,
          concurrency: 2,
          logLevel: options.logger.level,
          fenced: options.fence !== undefined,
        };
        const worker = new Worker(WORKER_URL, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB } });
        await new Promise<void>((resolve, reject) => {
          const onMessage = (reply: SinkReply) => {
            if (reply.op !== 'ready') return;
            worker.off('message', onMessage);
            worker.off('error', reject);
            resolve();
          };
          worker.on('message', onMessage);
          worker.once('error', reject);
        });
        worker.on('error', (error) => options.logger.error({ err: error, worker: index }, 'archiver sink worker failed'));
        return worker;
      }),
    );
    return new WorkerSegmentSink(workers, options.onEvent, options.fence, options.logger);
  }

  open(partition: number, startOffset: number): void {
    this.posted.set(partition, 0);
    this.written.set(partition, 0);
    this.post(partition, { op: 'open', partition, startOffset });
  }

  add(partition: number, packed: PackedRecords): void {
    if (packed.offsets.length === 0) return;
    this.posted.set(partition, (this.posted.get(partition) ?? 0) + packed.bytes.byteLength);
    this.workerOf(partition).postMessage({ op: 'add', partition, packed } satisfies SinkRequest, transferList(packed));
  }

  gap(partition: number, toOffsetExclusive: number): void {
    this.post(partition, { op: 'gap', partition, toOffsetExclusive });
  }

  async release(partition: number): Promise<void> {
    this.posted.delete(partition);
    this.written.delete(partition);
    await this.request(this.workerOf(partition), (id) => ({ op: 'release', partition, id }));
  }

  async flush(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.request(w, (id) => ({ op: 'flush', id }))));
  }

  async compact(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.request(w, (id) => ({ op: 'compact', id }))));
  }

  pendingBytes(): number {
    let total = 0;
    for (const [partition, posted] of this.posted) total += Math.max(0, posted - (this.written.get(partition) ?? 0));
    return total;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Writing what is buffered may wait on storage or on the fence (ZooKeeper); past the timeout
    // it is dropped: the partition's next owner reads it again from Kafka.
    const closed = await Promise.allSettled(this.workers.map((w) => withTimeout(this.request(w, (id) => ({ op: 'close', id })), SINK_CLOSE_TIMEOUT_MS, 'writing the buffered segments')));
    const unclosed = this.workers.filter((_, i) => closed[i]!.status === 'rejected');
    for (const outcome of closed) if (outcome.status === 'rejected') this.logger.warn({ err: outcome.reason }, 'archiver sink worker did not close cleanly; halting it');
    await this.haltWorkers(unclosed);
    await this.terminate();
  }

  /**
   * Stops the workers now, whatever they are writing, for a process that must exit: each
   * interrupts its DuckDB statements and waits for them (a thread torn down with a statement in
   * flight aborts the process: SIGABRT instead of the exit code). What they buffer is dropped;
   * the partitions' next owner reads it again from Kafka.
   */
  async halt(): Promise<void> {
    this.closed = true;
    await this.haltWorkers(this.workers);
    await this.terminate();
  }

  private async haltWorkers(workers: readonly Worker[]): Promise<void> {
    if (this.terminated) return;
    const halted = await Promise.allSettled(workers.map((w) => withTimeout(this.request(w, (id) => ({ op: 'halt', id })), SINK_HALT_TIMEOUT_MS, 'interrupting the sink worker\'s statements')));
    for (const outcome of halted) if (outcome.status === 'rejected') this.logger.warn({ err: outcome.reason }, 'archiver sink worker did not halt; terminating it with a statement possibly in flight');
  }

  private async terminate(): Promise<void> {
    if (this.terminated) return;
    this.terminated = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private workerOf(partition: number): Worker {
    return this.workers[partition % this.workers.length]!;
  }

  private post(partition: number, request: SinkRequest): void {
    this.workerOf(partition).postMessage(request);
  }

  private request(worker: Worker, make: (id: number) => SinkRequest): Promise<void> {
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage(make(id));
    });
  }

  private onReply(worker: Worker, reply: SinkReply): void {
    if (reply.op === 'fence') {
      const { fenceId, partition } = reply;
      const answer = (error?: unknown) =>
        worker.postMessage({ op: 'fenced', fenceId, ...(error === undefined ? {} : { error: error instanceof Error ? error.message : String(error) }) } satisfies SinkRequest);
      (this.fence ? this.fence(partition) : Promise.resolve()).then(() => answer(), answer);
      return;
    }
    if (reply.op === 'done') {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error) waiter?.reject(new LambdaError(`archiver sink worker: ${reply.error}`));
      else waiter?.resolve();
    } else if (reply.op === 'event') {
      const { event } = reply;
      if (event.type === 'written' && this.written.has(event.partition)) this.written.set(event.partition, this.written.get(event.partition)! + event.bytes);
      this.onEvent(event);
    }
  }
}
