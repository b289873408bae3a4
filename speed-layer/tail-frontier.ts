/** Where `events` stands in one partition, for status and metrics. */
export interface TailPartitionStatus {
  readonly partition: number;
  /** `events` reads the archive below this and the tail at or above it. */
  readonly splitOffset: number;
  /** `events` holds every accepted event below this. */
  readonly eventsEndExclusive: number;
  /** The views hold every record below this (the speed layer committed it, or a batch holds it). */
  readonly consumedEndExclusive: number;
}

interface Position {
  split: number;
  eventsEnd: number;
  consumed: number;
}

/**
 * The bookkeeping of the speed layer's tail of `events`, kept apart from I/O. Per partition,
 * split ≤ eventsEnd ≤ consumed, all only grow, and the tail table holds every accepted event in
 * [split, eventsEnd): so `events` (archive below split ∪ tail at or above it) is exactly the
 * accepted events below eventsEnd, never with a hole.
 *
 * A micro-batch's records of a partition join the tail only where they continue it (eventsEnd =
 * consumed) and the tail has room for the whole micro-batch; otherwise the partition lags
 * (eventsEnd < consumed) until the archive reaches what was consumed: a new split then moves
 * eventsEnd up to it, and the partition's next micro-batch continues the tail again.
 */
export class TailFrontier {
  private readonly positions = new Map<number, Position>();

  constructor(private readonly maxRows: number) {}

  private position(partition: number): Position {
    let p = this.positions.get(partition);
    if (!p) {
      p = { split: 0, eventsEnd: 0, consumed: 0 };
      this.positions.set(partition, p);
    }
    return p;
  }

  /**
   * Cuts of a batch version: the views hold the offsets below them, and so may `events` (the
   * archive holds them; the next split takes them). The speed layer starts at its first cuts.
   */
  raiseCuts(cutsExclusive: ReadonlyMap<number, number>): void {
    for (const [partition, cut] of cutsExclusive) {
      const p = this.position(partition);
      p.consumed = Math.max(p.consumed, cut);
      if (p.eventsEnd === 0 && p.split === 0) p.eventsEnd = p.split = cut;
    }
  }

  /** The views hold the records below this: `events` may read the archive up to it. */
  consumedEnd(partition: number): number {
    return this.positions.get(partition)?.consumed ?? 0;
  }

  /**
   * The partitions (of those with good events in a micro-batch of `goodRows` events) whose events
   * join the tail, which holds `tailRows` now: all that continue it, if the tail has room for the
   * whole micro-batch; none otherwise.
   */
  admitted(partitions: Iterable<number>, goodRows: number, tailRows: number): Set<number> {
    const admitted = new Set<number>();
    if (tailRows + goodRows > this.maxRows) return admitted;
    for (const partition of partitions) {
      const p = this.positions.get(partition);
      if (!p || p.eventsEnd >= p.consumed) admitted.add(partition);
    }
    return admitted;
  }

  /**
   * A micro-batch committed with records below `nextOffsets[p]`; the events of `admitted` went
   * into the tail. A partition with records but no good events continues the tail as it was.
   */
  committed(nextOffsets: ReadonlyMap<number, number>, withEvents: ReadonlySet<number>, admitted: ReadonlySet<number>): void {
    for (const [partition, next] of nextOffsets) {
      const p = this.position(partition);
      const continues = p.eventsEnd >= p.consumed && (admitted.has(partition) || !withEvents.has(partition));
      p.consumed = Math.max(p.consumed, next);
      if (continues) p.eventsEnd = p.consumed;
    }
  }

  /** The split of each partition for an archive ending at `archiveEnd[p]`: never past what the views hold. */
  splitsFor(archiveEndExclusive: ReadonlyMap<number, number>, cutsExclusive: (partition: number) => number): Map<number, number> {
    const partitions = new Set([...archiveEndExclusive.keys(), ...this.positions.keys()]);
    const splits = new Map<number, number>();
    for (const partition of partitions) {
      const consumed = Math.max(this.consumedEnd(partition), cutsExclusive(partition));
      splits.set(partition, Math.min(archiveEndExclusive.get(partition) ?? 0, consumed));
    }
    return splits;
  }

  /** `events` now splits at `splits` (committed): the archive holds what lies below them. */
  splitApplied(splits: ReadonlyMap<number, number>): void {
    for (const [partition, split] of splits) {
      const p = this.position(partition);
      p.split = Math.max(p.split, split);
      p.eventsEnd = Math.max(p.eventsEnd, p.split);
    }
  }

  /** Per partition, the tail rows below this are read by no `events` any more. */
  splits(): Map<number, number> {
    return new Map([...this.positions].map(([partition, p]) => [partition, p.split]));
  }

  /** Offsets the views hold and `events` does not yet, summed over partitions (0 when complete). */
  lagOffsets(): number {
    let lag = 0;
    for (const p of this.positions.values()) lag += p.consumed - p.eventsEnd;
    return lag;
  }

  status(): TailPartitionStatus[] {
    return [...this.positions]
      .sort(([a], [b]) => a - b)
      .map(([partition, p]) => ({ partition, splitOffset: p.split, eventsEndExclusive: p.eventsEnd, consumedEndExclusive: p.consumed }));
  }
}
