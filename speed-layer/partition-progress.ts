import type { SourceBatch } from '../core/source/record-source.ts';
import { runFrom, type RecordRun } from './record-run.ts';

/** Where one partition stands, for status and metrics. */
export interface PartitionStatus {
  readonly partition: number;
  /** The current batch version holds offsets below this; realtime state holds the rest. */
  readonly cutExclusive: number;
  /** Offsets below this are in realtime state (or in the batch). */
  readonly committedOffset: number;
  /** Offsets below this have been received (some may wait for the next micro-batch). */
  readonly receivedOffset: number;
  /** The partition's log end as last seen; undefined before the first fetch. */
  readonly highWatermark: number | undefined;
  /** Records in the log not yet in realtime state. */
  readonly lagRecords: number;
  readonly newestEventMs: number | undefined;
  /** now − newest event time seen; undefined before the first event. */
  readonly freshnessMs: number | undefined;
  /** Behind the log end and not advancing for the stall timeout. */
  readonly stalled: boolean;
}

interface Position {
  cut: number;
  received: number;
  committed: number;
  highWatermark: number | undefined;
  newestEventMs: number | undefined;
  /** When `committed` last advanced, or the partition was last seen caught up. */
  progressAtMs: number;
}

/**
 * The speed layer's offsets per partition, kept apart from I/O. Invariants: cut ≤ committed ≤
 * received, all only grow; a record is accepted once, and only at or above the cut. The source
 * promises not to repeat offsets, but `accept` enforces it anyway, so a replay after a rebalance
 * or a fault can never count a record twice.
 */
export class PartitionProgress {
  private readonly positions = new Map<number, Position>();

  constructor(private readonly options: { stallTimeoutMs: number; now?: () => number }) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private position(partition: number): Position {
    let position = this.positions.get(partition);
    if (!position) {
      position = { cut: 0, received: 0, committed: 0, highWatermark: undefined, newestEventMs: undefined, progressAtMs: this.now() };
      this.positions.set(partition, position);
    }
    return position;
  }

  cutExclusive(partition: number): number {
    return this.positions.get(partition)?.cut ?? 0;
  }

  /** Raises the cuts (a new batch version); positions below a cut jump to it. */
  raiseCuts(cutsExclusive: ReadonlyMap<number, number>): void {
    for (const [partition, cut] of cutsExclusive) {
      const p = this.position(partition);
      p.cut = Math.max(p.cut, cut);
      p.committed = Math.max(p.committed, p.cut);
      p.received = Math.max(p.received, p.cut);
    }
  }

  /** Where the source should (re)start reading the partition. */
  startOffset(partition: number): number {
    return this.position(partition).received;
  }

  /** The records of `batch` not seen before and not below the cut, as a run; marks them received. */
  accept(batch: SourceBatch): RecordRun | undefined {
    const p = this.position(batch.partition);
    p.highWatermark = Math.max(p.highWatermark ?? 0, batch.highWatermark);
    const { offsets } = batch.packed;
    const fresh = offsets.length > 0 ? runFrom({ partition: batch.partition, packed: batch.packed, from: 0, to: offsets.length }, p.received) : undefined;
    if (fresh) p.received = offsets[fresh.to - 1]! + 1;
    return fresh;
  }

  /** Keeps the records of a pending micro-batch that a cut raised meanwhile has not covered. */
  aboveCuts(runs: readonly RecordRun[]): RecordRun[] {
    const kept: RecordRun[] = [];
    for (const run of runs) {
      const above = runFrom(run, this.cutExclusive(run.partition));
      if (above) kept.push(above);
    }
    return kept;
  }

  /** The micro-batch holding offsets below `nextOffsets[p]` is in realtime state. */
  commit(nextOffsets: ReadonlyMap<number, number>, newestEventMs: ReadonlyMap<number, number>): void {
    const nowMs = this.now();
    for (const [partition, next] of nextOffsets) {
      const p = this.position(partition);
      if (next > p.committed) {
        p.committed = next;
        p.progressAtMs = nowMs;
      }
    }
    for (const [partition, eventMs] of newestEventMs) {
      const p = this.position(partition);
      p.newestEventMs = Math.max(p.newestEventMs ?? eventMs, eventMs);
    }
  }

  observeHighWatermarks(highWatermarks: ReadonlyMap<number, number>): void {
    for (const [partition, hw] of highWatermarks) {
      const p = this.position(partition);
      p.highWatermark = Math.max(p.highWatermark ?? 0, hw);
    }
  }

  status(): PartitionStatus[] {
    const nowMs = this.now();
    return [...this.positions.entries()]
      .sort(([a], [b]) => a - b)
      .map(([partition, p]) => {
        const lagRecords = Math.max(0, (p.highWatermark ?? 0) - p.committed);
        if (lagRecords === 0) p.progressAtMs = nowMs;
        return {
          partition,
          cutExclusive: p.cut,
          committedOffset: p.committed,
          receivedOffset: p.received,
          highWatermark: p.highWatermark,
          lagRecords,
          newestEventMs: p.newestEventMs,
          freshnessMs: p.newestEventMs === undefined ? undefined : nowMs - p.newestEventMs,
          stalled: lagRecords > 0 && nowMs - p.progressAtMs > this.options.stallTimeoutMs,
        };
      });
  }
}
