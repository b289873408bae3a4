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
  /** The archive holds every accepted event below this (as of the last split applied). */
  archived: number;
}

/** Where `events` splits per partition, and how far the archive reaches there (splitsFor). */
export interface TailSplits {
  /** `events` reads the archive below the split and the tail at or above it. */
  readonly splits: ReadonlyMap<number, number>;
  /** The archive holds the partition's accepted events below this; the tail's rows below it are recent archived ones. */
  readonly archived: ReadonlyMap<number, number>;
}

/**
 * The bookkeeping of the speed layer's tail of `events`, kept apart from I/O. Per partition,
 * split ≤ eventsEnd ≤ consumed, all only grow, and the tail table holds every accepted event in
 * [split, eventsEnd): so `events` (archive below split ∪ tail at or above it) is exactly the
 * accepted events below eventsEnd, never with a hole.
 *
 * The split trails the archive's end by up to `recentRows` offsets (over all partitions): the
 * newest archived events stay in the tail, so that a query over recent event time reads memory,
 * not Parquet. It moves in steps of a quarter of that, so that the tail is rebuilt (pruned) once
 * per quarter, not at every archive flush. `maxRows` bounds the events not archived yet.
 *
 * A micro-batch's records of a partition join the tail only where they continue it (eventsEnd =
 * consumed) and the tail has room for the whole micro-batch; otherwise the partition lags
 * (eventsEnd < consumed) until the archive reaches what was consumed: a new split then moves
 * eventsEnd up to it, and the partition's next micro-batch continues the tail again.
 */
export class TailFrontier {
  private readonly positions = new Map<number, Position>();

  constructor(
    private readonly maxRows: number,
    private readonly recentRows = 0,
  ) {}

  private position(partition: number): Position {
    let p = this.positions.get(partition);
    if (!p) {
      p = { split: 0, eventsEnd: 0, consumed: 0, archived: 0 };
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
   * whole micro-batch; none otherwise. Room is for events not archived yet: at most `maxRows`
   * rows, less those of the tail that are recent archived ones.
   */
  admitted(partitions: Iterable<number>, goodRows: number, tailRows: number): Set<number> {
    const admitted = new Set<number>();
    if (Math.min(tailRows, this.unarchivedOffsets()) + goodRows > this.maxRows) return admitted;
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

  /**
   * The split of each partition for an archive ending at `archiveEnd[p]`: never past what the
   * views hold, and below the archive's end by up to the partition's share of `recentRows`
   * where the tail holds those events. `fileEnds(p)`: where the archive's files of p end; a split
   * there spares `events` reading a file only up to the split.
   */
  splitsFor(
    archiveEndExclusive: ReadonlyMap<number, number>,
    cutsExclusive: (partition: number) => number,
    fileEnds: (partition: number) => readonly number[] = () => [],
  ): TailSplits {
    const partitions = new Set([...archiveEndExclusive.keys(), ...this.positions.keys()]);
    const keep = Math.floor(this.recentRows / Math.max(1, partitions.size));
    const splits = new Map<number, number>();
    const archived = new Map<number, number>();
    for (const partition of partitions) {
      const consumed = Math.max(this.consumedEnd(partition), cutsExclusive(partition));
      const end = Math.min(archiveEndExclusive.get(partition) ?? 0, consumed);
      archived.set(partition, end);
      const p = this.positions.get(partition);
      // The tail holds [p.split, p.eventsEnd): it can serve the newest archived events only
      // where the archive's end lies in there.
      if (keep === 0 || !p || end <= p.split || end > p.eventsEnd) splits.set(partition, end);
      else splits.set(partition, end - p.split > keep ? movedSplit(p.split, end, keep, fileEnds(partition)) : p.split);
    }
    return { splits, archived };
  }

  /** `events` now splits at `applied.splits` (committed): the archive holds what lies below them. */
  splitApplied(applied: TailSplits): void {
    for (const [partition, split] of applied.splits) {
      const p = this.position(partition);
      p.split = Math.max(p.split, split);
      p.eventsEnd = Math.max(p.eventsEnd, p.split);
      p.archived = Math.max(p.archived, applied.archived.get(partition) ?? split);
    }
  }

  /** Offsets in the tail's range that the archive does not hold yet, over all partitions: at least the rows not archived. */
  private unarchivedOffsets(): number {
    let offsets = 0;
    for (const p of this.positions.values()) offsets += Math.max(0, p.eventsEnd - Math.max(p.split, p.archived));
    return offsets;
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

/**
 * Where a split that trails the archive's end `end` by more than `keep` moves: to keep about three
 * quarters of `keep`, at a file's end when one lies near (between keeping all of `keep` and half
 * of it), never below `split` nor keeping more than `keep`.
 */
function movedSplit(split: number, end: number, keep: number, fileEnds: readonly number[]): number {
  const target = end - Math.floor((keep * 3) / 4);
  const low = Math.max(split, end - keep);
  const high = end - Math.ceil(keep / 2);
  let best: number | undefined;
  for (const fileEnd of fileEnds) {
    if (fileEnd < low || fileEnd > high) continue;
    if (best === undefined || Math.abs(fileEnd - target) < Math.abs(best - target)) best = fileEnd;
  }
  return best ?? target;
}
