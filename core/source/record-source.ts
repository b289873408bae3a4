import type { PackedRecords } from './packed-records.ts';

/** One record as read from the source: Kafka, or the single-node local log. */
export interface SourceRecord {
  readonly partition: number;
  readonly offset: number;
  /** The record's broker/append time (not the event time inside the value). */
  readonly timestampMs: number;
  readonly value: Buffer | null;
}

/**
 * Consecutive records of one partition, in offset order, none below the subscriber's position,
 * at least one. They come packed (one copy of the values in flat buffers, no object per record):
 * a subscriber keeps them for a while (a micro-batch, a segment) or hands them to another
 * thread, and per-record objects kept that long cost the garbage collector more than anything
 * else the layers do. `recordAt` in packed-records.ts reads one as a SourceRecord.
 */
export interface SourceBatch {
  readonly topic: string;
  readonly partition: number;
  readonly packed: PackedRecords;
  /** The offset the next record written to this partition will get (log end offset). */
  readonly highWatermark: number;
}

/** Offsets [fromOffset, toOffsetExclusive) of a partition that can no longer be read (retention). */
export interface SourceGap {
  readonly partition: number;
  readonly fromOffset: number;
  readonly toOffsetExclusive: number;
}

export interface SubscribeOptions {
  /** Consumer group. A unique id per process reads every partition; a shared one splits them. */
  readonly groupId: string;
  /**
   * Where to start reading a partition when it is assigned: the first offset wanted. Called on
   * every assignment (also after a rebalance), so it can derive the position from durable state.
   */
  readonly startOffset: (partition: number) => number | Promise<number>;
  /**
   * Called for each batch, one at a time per partition (the next batch of that partition waits for
   * the promise); batches of different partitions may be handed over concurrently.
   */
  readonly onBatch: (batch: SourceBatch) => Promise<void>;
  /** Partitions taken away by a rebalance: finish or drop work for them. */
  readonly onRevoke?: (partitions: readonly number[]) => void | Promise<void>;
  /** The source skipped offsets that were deleted before they were read. */
  readonly onGap?: (gap: SourceGap) => void;
  /**
   * Read only these partitions (of those assigned) until `select` changes it; all when absent.
   * For subscribers that split partitions among themselves by other means than the consumer
   * group (the archivers' ZooKeeper ownership): the others are not fetched at all.
   */
  readonly selectedPartitions?: readonly number[];
}

export interface SourceSubscription {
  /** Partitions currently assigned to this subscriber. */
  assignedPartitions(): readonly number[];
  /**
   * From now on reads only `partitions` (see SubscribeOptions.selectedPartitions): those dropped
   * are revoked (onRevoke, after their batches handed over before) and no longer fetched; those
   * added start at `startOffset(partition)`. Resolves once both have happened.
   */
  select(partitions: readonly number[]): Promise<void>;
  stop(): Promise<void>;
}

/** A partitioned, offset-addressed log of records (DESIGN.md: Kafka, or the local log). */
export interface RecordSource {
  readonly topic: string;
  partitionCount(): Promise<number>;
  /** Next offset per partition (log end), for lag. */
  highWatermarks(): Promise<Map<number, number>>;
  subscribe(options: SubscribeOptions): Promise<SourceSubscription>;
}
