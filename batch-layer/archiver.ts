import { DuckDBInstance } from '@duckdb/node-api';
import type { Registry } from 'prom-client';
import type { PartitionOwnership } from '../core/coordination/partition-ownership.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { RecordSource, SourceBatch, SourceGap, SourceSubscription } from '../core/source/record-source.ts';
import { readMasterChains } from '../core/storage/segment-chain.ts';
import type { StorageLayout } from '../core/storage/storage-layout.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { readArchivePosition } from './archive-position.ts';
import { ArchiverMetrics } from './archiver-metrics.ts';
import type { CompactionOptions } from './segment-compactor.ts';
import { LocalSegmentSink, type FlushOptions, type SegmentSink, type SinkEvent } from './segment-sink.ts';
import { SegmentWriter } from './segment-writer.ts';
import { WorkerSegmentSink } from './worker-segment-sink.ts';

export type { FlushOptions } from './segment-sink.ts';

export interface ArchiverOptions {
  readonly source: RecordSource;
  readonly layout: StorageLayout;
  readonly schema: EventSchema;
  /**
   * The consumer group. With `ownership`, this node's own (it reads only the partitions it owns);
   * without, shared by the archivers, which then split the partitions by the group protocol.
   */
  readonly groupId: string;
  /**
   * Which partitions this node archives, fenced: each segment is published only while ZooKeeper
   * says this node still holds the partition (PartitionOwnership.assertOwned).
   */
  readonly ownership?: PartitionOwnership;
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly flush?: FlushOptions;
  /** Background merging of small segments; `false` turns it off. */
  readonly compaction?: (CompactionOptions & { readonly intervalMs?: number }) | false;
  /**
   * Worker threads that decode records and write segments (default 2: decoding and staging cost
   * more per record than reading, so one worker falls behind the reading thread); this thread
   * only reads the source. 0 does everything on this thread (with `duckdb`, or a private instance).
   */
  readonly workers?: number;
  readonly duckdb?: DuckDBInstance;
}

export interface ArchiverPartitionStatus {
  readonly partition: number;
  /** Everything below this offset is in the master dataset (or recorded as a gap). */
  readonly archivedEndExclusive: number;
  /** Everything below this offset has been read (and is being written). */
  readonly readEndExclusive: number;
  readonly highWatermark?: number;
}

export interface ArchiverGap {
  readonly partition: number;
  readonly fromOffset: number;
  readonly toOffsetExclusive: number;
}

export interface ArchiverStatus {
  readonly running: boolean;
  readonly groupId: string;
  /** Partitions this process archives now, with their positions. */
  readonly partitions: readonly ArchiverPartitionStatus[];
  /** Every retention gap recorded in the master dataset (all partitions, all time). */
  readonly gaps: readonly ArchiverGap[];
  readonly gapOffsets: number;
}

interface PartitionState {
  durableEnd: number;
  readEnd: number;
  highWatermark?: number;
  pendingGap?: SourceGap;
}

/**
 * Writes the topic into the master dataset (DESIGN.md, "Storage"). Exactly once, without any
 * committed offset: on assignment a partition resumes at the end of its file chain
 * (archive-position.ts), a segment becomes visible only by its atomic rename, and records read
 * but not yet in a file are simply read again after a crash. The sink ignores records below a
 * partition's buffered end, so a redelivered batch is harmless.
 *
 * This thread only reads: decoding, buffering and writing happen in the sink (on worker threads
 * by default). Reading pauses while more than `flush.maxPendingBytes` are read but not written.
 */
export class Archiver {
  private readonly partitions = new Map<number, PartitionState>();
  private readonly metrics: ArchiverMetrics;
  private readonly maxPendingBytes: number;
  private subscription: SourceSubscription | undefined;
  private compactionTimer: NodeJS.Timeout | undefined;
  private readingStopped: Promise<void> | undefined;

  private constructor(
    private readonly options: ArchiverOptions,
    private readonly sink: SegmentSink,
    private readonly release: () => Promise<void>,
    metrics: ArchiverMetrics,
  ) {
    this.metrics = metrics;
    this.maxPendingBytes = options.flush?.maxPendingBytes ?? 256 * 1024 * 1024;
  }

  static async create(options: ArchiverOptions): Promise<Archiver> {
    const metrics = new ArchiverMetrics(options.metrics);
    let archiver: Archiver | undefined;
    const onEvent = (event: SinkEvent) => archiver?.onSinkEvent(event);
    const compaction = options.compaction === false ? false : { ...options.compaction };
    const workers = options.workers ?? 2;
    const ownership = options.ownership;
    const fence = ownership ? (partition: number) => ownership.assertOwned(partition) : undefined;
    if (workers > 0) {
      const sink = await WorkerSegmentSink.create({
        workers,
        storageDir: options.layout.rootDir,
        topic: options.source.topic,
        schema: options.schema,
        ...(options.flush ? { flush: options.flush } : {}),
        compaction,
        logger: options.logger,
        onEvent,
        ...(fence ? { fence } : {}),
      });
      archiver = new Archiver(options, sink, async () => undefined, metrics);
      return archiver;
    }
    const duckdb = options.duckdb ?? (await DuckDBInstance.create(':memory:'));
    const writer = await SegmentWriter.create({ duckdb, layout: options.layout, topic: options.source.topic, schema: options.schema, ...(fence ? { fence } : {}) });
    const sink = new LocalSegmentSink(writer, { layout: options.layout, schema: options.schema, logger: options.logger, ...(options.flush ? { flush: options.flush } : {}), compaction }, onEvent);
    archiver = new Archiver(
      options,
      sink,
      async () => {
        await writer.close();
        if (!options.duckdb) duckdb.closeSync();
      },
      metrics,
    );
    return archiver;
  }

  get topic(): string {
    return this.options.source.topic;
  }

  async start(): Promise<void> {
    if (this.subscription) return;
    const { ownership } = this.options;
    const subscription = await this.options.source.subscribe({
      groupId: this.options.groupId,
      startOffset: (partition) => this.assign(partition),
      onBatch: (batch) => this.onBatch(batch),
      onRevoke: (partitions) => this.revoke(partitions),
      onGap: (gap) => this.onGap(gap),
      ...(ownership ? { selectedPartitions: [] } : {}),
    });
    this.subscription = subscription;
    if (ownership) {
      // Reads exactly the partitions held: taken ones from their files' end, given-up ones dropped.
      const follow = async () => {
        if (this.subscription === subscription) await subscription.select(ownership.owned());
      };
      await ownership.start({ acquired: follow, released: follow });
    }
    if (this.options.compaction !== false) {
      this.compactionTimer = setInterval(() => void this.compact(), this.options.compaction?.intervalMs ?? 60_000);
      this.compactionTimer.unref();
    }
  }

  /**
   * Stops reading, writes what was read (while the partitions are still held), gives the
   * partitions up, and releases the sink.
   */
  async stop(): Promise<void> {
    clearInterval(this.compactionTimer);
    await this.stopReading();
    try {
      await this.sink.close();
      await this.options.ownership?.close();
    } finally {
      await this.release();
      this.partitions.clear();
    }
  }

  /** Stops reading from Kafka (the first step of stop, which may be taken alone before it). */
  stopReading(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    this.readingStopped ??= subscription?.stop() ?? Promise.resolve();
    return this.readingStopped;
  }

  /** Before a forced exit (a stop past its deadline): the sink stops writing at once. */
  async halt(): Promise<void> {
    clearInterval(this.compactionTimer);
    await this.sink.halt?.();
  }

  /** Writes everything read so far; resolves when it is in the files. */
  flushNow(): Promise<void> {
    return this.sink.flush();
  }

  /** One compaction pass over the assigned partitions now (also run on a timer). */
  async compact(): Promise<void> {
    try {
      await this.sink.compact();
    } catch (error) {
      this.options.logger.warn({ err: error, topic: this.topic }, 'segment compaction failed; retrying on the next pass');
    }
  }

  /** Per assigned partition, the offset below which everything is in the files. */
  archivedPositions(): Map<number, number> {
    return new Map([...this.partitions].map(([partition, state]) => [partition, state.durableEnd]));
  }

  /** Per assigned partition, the offset below which everything has been read. */
  readPositions(): Map<number, number> {
    return new Map([...this.partitions].map(([partition, state]) => [partition, state.readEnd]));
  }

  async status(): Promise<ArchiverStatus> {
    const chains = await readMasterChains(this.options.layout, this.topic);
    const gaps: ArchiverGap[] = [];
    for (const chain of chains.values()) {
      for (const item of chain.items) {
        if (item.kind === 'gap') gaps.push({ partition: chain.partition, fromOffset: item.firstOffset, toOffsetExclusive: item.endOffsetExclusive });
      }
    }
    const partitions = [...this.partitions.entries()]
      .sort(([a], [b]) => a - b)
      .map(([partition, state]) => ({
        partition,
        archivedEndExclusive: state.durableEnd,
        readEndExclusive: state.readEnd,
        ...(state.highWatermark === undefined ? {} : { highWatermark: state.highWatermark }),
      }));
    return {
      running: this.subscription !== undefined,
      groupId: this.options.groupId,
      partitions,
      gaps,
      gapOffsets: gaps.reduce((sum, g) => sum + g.toOffsetExclusive - g.fromOffset, 0),
    };
  }

  private async assign(partition: number): Promise<number> {
    if (this.partitions.has(partition)) await this.sink.release(partition);
    const { endOffsetExclusive } = await readArchivePosition(this.options.layout, this.topic, partition);
    this.partitions.set(partition, { durableEnd: endOffsetExclusive, readEnd: endOffsetExclusive });
    this.sink.open(partition, endOffsetExclusive);
    this.metrics.archivedEnd.set({ partition }, endOffsetExclusive);
    this.options.logger.info({ topic: this.topic, partition, fromOffset: endOffsetExclusive }, 'archiving partition');
    return endOffsetExclusive;
  }

  /** What was read but not written is dropped: the partition's new owner resumes from the files. */
  private async revoke(partitions: readonly number[]): Promise<void> {
    for (const partition of partitions) this.partitions.delete(partition);
    await Promise.all(partitions.map((p) => this.sink.release(p)));
  }

  private onGap(gap: SourceGap): void {
    const state = this.partitions.get(gap.partition);
    if (state) state.pendingGap = gap;
  }

  private async onBatch(batch: SourceBatch): Promise<void> {
    const state = this.partitions.get(batch.partition);
    if (!state) return;
    state.highWatermark = batch.highWatermark;
    if (state.pendingGap) {
      this.sink.gap(batch.partition, state.pendingGap.toOffsetExclusive);
      state.readEnd = Math.max(state.readEnd, state.pendingGap.toOffsetExclusive);
      delete state.pendingGap;
    }
    const { offsets } = batch.packed;
    if (offsets.length > 0) state.readEnd = Math.max(state.readEnd, offsets[offsets.length - 1]! + 1);
    // After the last offset is read: a sink on worker threads takes the buffers over.
    this.sink.add(batch.partition, batch.packed);
    this.metrics.lag.set({ partition: batch.partition }, Math.max(0, batch.highWatermark - state.readEnd));
    while (this.sink.pendingBytes() > this.maxPendingBytes && this.subscription) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  private onSinkEvent(event: SinkEvent): void {
    const state = this.partitions.get(event.partition);
    const { partition } = event;
    switch (event.type) {
      case 'written':
        if (state) state.durableEnd = Math.max(state.durableEnd, event.endOffsetExclusive);
        this.metrics.segmentsWritten.inc();
        this.metrics.flushDuration.observe(event.seconds);
        this.metrics.records.inc({ result: 'archived' }, event.accepted);
        this.metrics.records.inc({ result: 'rejected' }, event.rejected);
        this.metrics.archivedEnd.set({ partition }, event.endOffsetExclusive);
        return;
      case 'gap': {
        if (state) state.durableEnd = Math.max(state.durableEnd, event.toOffsetExclusive);
        const lostOffsets = event.toOffsetExclusive - event.fromOffset;
        this.metrics.gaps.inc({ partition });
        this.metrics.gapOffsets.inc({ partition }, lostOffsets);
        this.metrics.archivedEnd.set({ partition }, event.toOffsetExclusive);
        this.options.logger.error(
          { topic: this.topic, partition, fromOffset: event.fromOffset, toOffsetExclusive: event.toOffsetExclusive, lostOffsets },
          'offsets were deleted from the source (retention) before they were archived; the batch layer will never see them',
        );
        return;
      }
      case 'write-failed':
        this.metrics.flushFailures.inc();
        return;
      case 'compacted':
        this.metrics.compactions.inc({ result: event.failed ? 'failed' : 'merged' }, event.failed ? 1 : event.merged);
        return;
    }
  }
}
