import { packRecords, recordAt, type PackedRecords } from '../core/source/packed-records.ts';
import type { SourceRecord } from '../core/source/record-source.ts';

/**
 * Consecutive records of one partition, offsets rising, as the speed layer holds them between
 * the fetch and the micro-batch's commit: records `from` to `to` (exclusive) of `packed`.
 * Splitting or trimming a run only moves its bounds; the packed buffers are shared.
 */
export interface RecordRun {
  readonly partition: number;
  readonly packed: PackedRecords;
  readonly from: number;
  readonly to: number;
}

/** Packs `records` (one partition, offsets rising) into a run. */
export function packRun(partition: number, records: readonly SourceRecord[]): RecordRun {
  return { partition, packed: packRecords(records), from: 0, to: records.length };
}

export function runLength(run: RecordRun): number {
  return run.to - run.from;
}

/** The first `count` records of `run`, and the rest. */
export function splitRun(run: RecordRun, count: number): [RecordRun, RecordRun] {
  const at = run.from + count;
  return [
    { ...run, to: at },
    { ...run, from: at },
  ];
}

/** The records of `run` at or above `cutExclusive`, undefined when none is. */
export function runFrom(run: RecordRun, cutExclusive: number): RecordRun | undefined {
  const { offsets } = run.packed;
  if (offsets[run.from]! >= cutExclusive) return run;
  // Offsets rise: the first one at or above the cut, by bisection.
  let lo = run.from;
  let hi = run.to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (offsets[mid]! >= cutExclusive) hi = mid;
    else lo = mid + 1;
  }
  return lo < run.to ? { ...run, from: lo } : undefined;
}

/** Record k of the run (0-based), as the source delivered it. */
export function runRecord(run: RecordRun, k: number): SourceRecord {
  return recordAt(run.packed, run.partition, run.from + k);
}

/** Per partition, the offset after the last record of `runs`. */
export function nextOffsets(runs: readonly RecordRun[]): Map<number, number> {
  const next = new Map<number, number>();
  for (const run of runs) {
    if (run.to === run.from) continue;
    next.set(run.partition, Math.max(next.get(run.partition) ?? 0, run.packed.offsets[run.to - 1]! + 1));
  }
  return next;
}

export function totalLength(runs: readonly RecordRun[]): number {
  let n = 0;
  for (const run of runs) n += run.to - run.from;
  return n;
}
