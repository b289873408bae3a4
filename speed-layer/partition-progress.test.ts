import { describe, expect, it } from 'vitest';
import { packRecords } from '../core/source/packed-records.ts';
import type { SourceBatch, SourceRecord } from '../core/source/record-source.ts';
import { PartitionProgress } from './partition-progress.ts';
import { packRun, runLength, runRecord, type RecordRun } from './record-run.ts';

const records = (partition: number, from: number, to: number): SourceRecord[] =>
  Array.from({ length: to - from }, (_, i) => ({ partition, offset: from + i, timestampMs: 0, value: null }));
const batch = (partition: number, from: number, to: number, highWatermark: number): SourceBatch => ({
  topic: 't',
  partition,
  packed: packRecords(records(partition, from, to)),
  highWatermark,
});
const offsets = (run: RecordRun | undefined) => (run ? Array.from({ length: runLength(run) }, (_, k) => runRecord(run, k).offset) : []);

describe('PartitionProgress', () => {
  it('accepts each offset once, even when the source delivers it again', () => {
    const progress = new PartitionProgress({ stallTimeoutMs: 1_000 });
    expect(offsets(progress.accept(batch(0, 0, 5, 5)))).toEqual([0, 1, 2, 3, 4]);
    expect(offsets(progress.accept(batch(0, 3, 8, 8)))).toEqual([5, 6, 7]);
    expect(progress.accept(batch(0, 2, 8, 8))).toBeUndefined();
    expect(progress.startOffset(0)).toBe(8);
    expect(progress.startOffset(1)).toBe(0);
  });

  it('starts at the cuts and drops records below a cut raised after they were received', () => {
    const progress = new PartitionProgress({ stallTimeoutMs: 1_000 });
    progress.raiseCuts(new Map([[0, 100]]));
    expect(progress.startOffset(0)).toBe(100);
    expect(offsets(progress.accept(batch(0, 90, 110, 300)))).toEqual(
      Array.from({ length: 10 }, (_, i) => 100 + i),
    );
    const pending = [packRun(0, records(0, 100, 110)), packRun(1, records(1, 0, 3))];
    progress.raiseCuts(new Map([[0, 105]]));
    const kept = progress.aboveCuts(pending);
    expect(kept.flatMap((run) => Array.from({ length: runLength(run) }, (_, k) => runRecord(run, k))).map((r) => [r.partition, r.offset])).toEqual([
      ...[105, 106, 107, 108, 109].map((o) => [0, o]),
      [1, 0], [1, 1], [1, 2],
    ]);
    // Cuts never go back.
    progress.raiseCuts(new Map([[0, 50]]));
    expect(progress.cutExclusive(0)).toBe(105);
    progress.raiseCuts(new Map([[0, 200]]));
    expect(progress.aboveCuts(pending).map((run) => run.partition)).toEqual([1]);
  });

  it('reports lag, freshness and stalled partitions from what was committed', () => {
    let nowMs = 1_000_000;
    const progress = new PartitionProgress({ stallTimeoutMs: 5_000, now: () => nowMs });
    progress.accept(batch(0, 0, 10, 50));
    progress.accept(batch(1, 0, 10, 10));
    progress.commit(new Map([[0, 10], [1, 10]]), new Map([[0, nowMs - 2_000]]));
    expect(progress.status()).toMatchObject([
      { partition: 0, committedOffset: 10, lagRecords: 40, freshnessMs: 2_000, stalled: false },
      { partition: 1, committedOffset: 10, lagRecords: 0, freshnessMs: undefined, stalled: false },
    ]);
    nowMs += 6_000;
    progress.observeHighWatermarks(new Map([[1, 10]]));
    expect(progress.status().map((p) => p.stalled)).toEqual([true, false]);
    progress.commit(new Map([[0, 20]]), new Map([[0, nowMs - 100]]));
    expect(progress.status()[0]).toMatchObject({ lagRecords: 30, freshnessMs: 100, stalled: false });
  });
});
