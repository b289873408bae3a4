import { createEventDecoder } from '../core/events/decode-event.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { StorageLayout } from '../core/storage/storage-layout.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import type { PackedRecords } from '../core/source/packed-records.ts';
import { LambdaError } from '../core/errors/index.ts';
import { retry } from '../core/retry/retry.ts';
import { PartitionBuffer } from './partition-buffer.ts';
import { SegmentCompactor, type CompactionOptions } from './segment-compactor.ts';
import type { SegmentWriter } from './segment-writer.ts';

export interface FlushOptions {
  /** Write a segment once this many records are buffered for a partition (default 100,000). */
  readonly maxRecords?: number;
  /** … or once their values take this many bytes (default 32 MiB). */
  readonly maxBytes?: number;
  /** … or once the oldest buffered record waited this long (default 5 s). */
  readonly intervalMs?: number;
  /** Reading pauses while this many bytes are read but not yet in the files (default 256 MiB). */
  readonly maxPendingBytes?: number;
  /**
   * Accepted records are appended to the segment's DuckDB table in groups of this many while
   * the segment fills (default 8,192), so that sealing it leaves little but the file to write;
   * smaller segments are written in one go.
   */
  readonly stageRecords?: number;
}

/** What a sink reports, in order per partition. */
export type SinkEvent =
  | { readonly type: 'written'; readonly partition: number; readonly endOffsetExclusive: number; readonly accepted: number; readonly rejected: number; readonly bytes: number; readonly seconds: number }
  | { readonly type: 'gap'; readonly partition: number; readonly fromOffset: number; readonly toOffsetExclusive: number }
  | { readonly type: 'write-failed'; readonly partition: number; readonly message: string }
  | { readonly type: 'compacted'; readonly partition: number; readonly merged: number; readonly failed: boolean };

/**
 * Where the archiver's records go: decoded, buffered per partition and written as segments in
 * offset order per partition. LocalSegmentSink does it on the calling thread; WorkerSegmentSink
 * on worker threads (same code, behind messages), so decoding and appending stay off the thread
 * that reads Kafka.
 */
export interface SegmentSink {
  /** Starts (or restarts) a partition whose files end at `startOffset`. */
  open(partition: number, startOffset: number): void;
  /**
   * Records of one partition in offset order; those below its buffered end are ignored. The sink
   * may take the buffers over (WorkerSegmentSink transfers them to its thread).
   */
  add(partition: number, packed: PackedRecords): void;
  /** Offsets up to `toOffsetExclusive` were deleted by the source before they were read. */
  gap(partition: number, toOffsetExclusive: number): void;
  /** Drops the partition's buffer and waits for its writes in progress (no more retries). */
  release(partition: number): Promise<void>;
  /** Writes every buffer now; resolves when all of it is in the files. */
  flush(): Promise<void>;
  /** One compaction pass over the open partitions, between their writes. */
  compact(): Promise<void>;
  /** Bytes handed to the sink and not yet in the files. */
  pendingBytes(): number;
  /**
   * Writes what is buffered, one attempt per segment, and stops: a stop must not wait on a store
   * or a fence that is down (a partition's write failing here ends its later ones; the archive
   * positions are taken from the files, so those records are read again on the next start).
   */
  close(): Promise<void>;
  /**
   * Stops at once, dropping what is buffered, before a forced exit. Only a sink on worker threads
   * needs it: a thread torn down with a DuckDB statement in flight aborts the process.
   */
  halt?(): Promise<void>;
}

interface PartitionState {
  readonly partition: number;
  readonly buffer: PartitionBuffer;
  /** The DuckDB table the buffer's accepted records are staged in, once it has taken some. */
  stagedTable: string;
  /** Stages, segment writes (and compaction passes) of this partition, in order. */
  writes: Promise<void>;
  inFlightBytes: number;
  /** Aborted when the partition is released: a write in progress gets no more retries. */
  readonly released: AbortController;
  /** A write failed while closing: the partition's later segments are not attempted. */
  gaveUp: boolean;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * The sink on the calling thread. Records are decoded as they are added; the accepted ones are
 * appended to the segment's DuckDB table in groups while it fills (writes ahead), so that when a
 * full (or old enough) buffer is sealed, little is left but the COPY to its file. A sealed
 * buffer goes to the partition's write queue and a fresh one starts, so adding never waits for
 * writing; a failed stage or write is retried with backoff until it succeeds or the partition
 * is released.
 */
export class LocalSegmentSink implements SegmentSink {
  private readonly partitions = new Map<number, PartitionState>();
  private readonly decode: ReturnType<typeof createEventDecoder>;
  private readonly compactor: SegmentCompactor | undefined;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly intervalMs: number;
  private readonly stageRecords: number;
  private readonly timer: NodeJS.Timeout;
  private readonly fieldCount: number;
  private closing = false;
  /** Aborted by close(): ends the waits of writes retrying since before it. */
  private readonly closed = new AbortController();

  constructor(
    private readonly writer: SegmentWriter,
    options: {
      readonly layout: StorageLayout;
      readonly schema: EventSchema;
      readonly logger: Logger;
      readonly flush?: FlushOptions;
      readonly compaction?: CompactionOptions | false;
    },
    private readonly emit: (event: SinkEvent) => void,
    private readonly logger: Logger = options.logger,
  ) {
    this.decode = createEventDecoder(options.schema);
    this.fieldCount = options.schema.fields.length;
    this.maxRecords = options.flush?.maxRecords ?? 100_000;
    this.maxBytes = options.flush?.maxBytes ?? 32 * 1024 * 1024;
    this.intervalMs = options.flush?.intervalMs ?? 5_000;
    this.stageRecords = Math.max(1, options.flush?.stageRecords ?? 8_192);
    this.compactor = options.compaction === false ? undefined : new SegmentCompactor(writer, options.layout, options.logger, options.compaction);
    this.timer = setInterval(() => this.sealAged(), Math.max(20, Math.min(1_000, this.intervalMs / 4)));
    this.timer.unref();
  }

  open(partition: number, startOffset: number): void {
    const previous = this.partitions.get(partition);
    if (previous) this.discard(previous);
    this.partitions.set(partition, {
      partition,
      buffer: new PartitionBuffer(partition, startOffset, this.fieldCount),
      stagedTable: this.writer.newStagedTable(),
      writes: previous?.writes ?? Promise.resolve(),
      inFlightBytes: 0,
      released: new AbortController(),
      gaveUp: false,
    });
  }

  add(partition: number, packed: PackedRecords): void {
    const state = this.partitions.get(partition);
    if (!state) return;
    state.buffer.add(packed, this.decode, Date.now());
    if (state.buffer.recordCount >= this.maxRecords || state.buffer.byteCount >= this.maxBytes) this.seal(state);
    else if (state.buffer.acceptedCount >= this.stageRecords) this.stage(state);
  }

  /** The gap starts where the partition's archive (buffer included) ends, whatever the source saw. */
  gap(partition: number, toOffsetExclusive: number): void {
    const state = this.partitions.get(partition);
    if (!state) return;
    const fromOffset = state.buffer.endOffsetExclusive;
    if (toOffsetExclusive <= fromOffset) return;
    this.seal(state);
    state.buffer.reset(toOffsetExclusive);
    this.enqueue(state, async () => {
      await this.retrying(state, () => this.writer.writeGap({ partition, firstOffset: fromOffset, endOffsetExclusive: toOffsetExclusive, detectedAt: new Date() }));
      this.emit({ type: 'gap', partition, fromOffset, toOffsetExclusive });
    });
  }

  async release(partition: number): Promise<void> {
    const state = this.partitions.get(partition);
    if (!state) return;
    this.partitions.delete(partition);
    this.discard(state);
    await state.writes;
  }

  async flush(): Promise<void> {
    for (const state of this.partitions.values()) this.seal(state);
    await Promise.all([...this.partitions.values()].map((s) => s.writes));
  }

  async compact(): Promise<void> {
    const compactor = this.compactor;
    if (!compactor) return;
    const passes = [...this.partitions.values()].map((state) =>
      this.enqueue(state, async () => {
        try {
          const result = await compactor.compactPartition(state.partition);
          this.emit({ type: 'compacted', partition: state.partition, merged: result.merged, failed: false });
        } catch (error) {
          this.logger.warn({ err: error, partition: state.partition }, 'segment compaction failed; retrying on the next pass');
          this.emit({ type: 'compacted', partition: state.partition, merged: 0, failed: true });
        }
      }),
    );
    await Promise.all(passes);
  }

  pendingBytes(): number {
    let total = 0;
    for (const state of this.partitions.values()) total += state.buffer.byteCount + state.inFlightBytes;
    return total;
  }

  /** See SegmentSink.close. The writer is the caller's to close. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.closing = true;
    this.closed.abort();
    await this.flush();
    for (const state of this.partitions.values()) this.discard(state);
    await Promise.all([...this.partitions.values()].map((s) => s.writes));
    this.partitions.clear();
  }

  /** Queues the buffer's accepted records for appending to the segment's table. */
  private stage(state: PartitionState): void {
    const accepted = state.buffer.takeAccepted();
    const table = state.stagedTable;
    this.enqueue(state, () => this.retrying(state, () => this.writer.appendStaged(table, state.partition, accepted)));
  }

  /** Hands the buffer to the partition's write queue and starts a fresh one. */
  private seal(state: PartitionState): void {
    const { buffer } = state;
    if (buffer.isEmpty) return;
    // A segment that staged records stages the rest too, and is written from its table.
    const table = buffer.takenAcceptedCount > 0 ? state.stagedTable : undefined;
    if (table && buffer.acceptedCount > 0) this.stage(state);
    const stagedRows = buffer.takenAcceptedCount;
    const content = buffer.content();
    const bytes = buffer.byteCount;
    buffer.reset(content.endOffsetExclusive);
    if (table) state.stagedTable = this.writer.newStagedTable();
    state.inFlightBytes += bytes;
    this.enqueue(state, async () => {
      try {
        const startedAt = performance.now();
        await this.retrying(state, () => this.writer.write(content, table ? { table, rows: stagedRows } : undefined));
        this.emit({
          type: 'written',
          partition: state.partition,
          endOffsetExclusive: content.endOffsetExclusive,
          accepted: stagedRows + content.accepted.count,
          rejected: content.rejected.length,
          bytes,
          seconds: (performance.now() - startedAt) / 1000,
        });
      } finally {
        state.inFlightBytes -= bytes;
        if (table) await this.dropStaged(state, table);
      }
    });
  }

  /** No more retries for the partition's queue; what it staged for the open segment is dropped. */
  private discard(state: PartitionState): void {
    state.released.abort();
    if (state.buffer.takenAcceptedCount === 0) return;
    const table = state.stagedTable;
    this.enqueue(state, () => this.dropStaged(state, table));
  }

  private async dropStaged(state: PartitionState, table: string): Promise<void> {
    await this.writer.dropStaged(table).catch((error: unknown) => this.logger.warn({ err: error, partition: state.partition }, 'cannot drop a staged segment table'));
  }

  private sealAged(): void {
    const now = Date.now();
    for (const state of this.partitions.values()) {
      if (state.buffer.ageMs(now) >= this.intervalMs) this.seal(state);
    }
  }

  /**
   * Runs a write until it succeeds, whatever failed (a full disk, the fence's ZooKeeper), while the
   * partition is held and the sink open; once when released or closing.
   */
  private async retrying(state: PartitionState, write: () => Promise<unknown>): Promise<void> {
    const { partition } = state;
    // Ends the wait between attempts on release or close; the first attempt always runs.
    const stop = new AbortController();
    const stopWaiting = () => stop.abort();
    state.released.signal.addEventListener('abort', stopWaiting);
    this.closed.signal.addEventListener('abort', stopWaiting);
    try {
      if (state.gaveUp) throw new LambdaError('not written: an earlier segment of the partition could not be written while stopping', { context: { partition } });
      await retry(() => write(), {
        retries: Infinity,
        minDelayMs: RETRY_MIN_MS,
        maxDelayMs: RETRY_MAX_MS,
        signal: stop.signal,
        isRetriable: () => !this.closing && !state.released.signal.aborted,
        onRetry: (error, attempt, retryInMs) => {
          this.logger.error({ err: error, partition, attempt, retryInMs: Math.round(retryInMs) }, 'cannot write to the master dataset; retrying');
          this.emit({ type: 'write-failed', partition, message: error instanceof Error ? error.message : String(error) });
        },
      });
    } catch (error) {
      if (this.closing && !state.gaveUp) {
        this.logger.warn({ err: error, partition }, 'cannot write to the master dataset while stopping; these records are read again on the next start');
        state.gaveUp = true; // its later segments would not follow on from the files
      }
      this.emit({ type: 'write-failed', partition, message: error instanceof Error ? error.message : String(error) });
      throw error;
    } finally {
      state.released.signal.removeEventListener('abort', stopWaiting);
      this.closed.signal.removeEventListener('abort', stopWaiting);
    }
  }

  private enqueue(state: PartitionState, task: () => Promise<void>): Promise<void> {
    // Ignored here: every task logs and reports its own failure (`retrying`, the compaction's catch); this chain only orders the partition's writes.
    state.writes = state.writes.then(task).catch(() => undefined);
    return state.writes;
  }
}
