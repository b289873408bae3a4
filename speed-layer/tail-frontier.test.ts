import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TailFrontier } from './tail-frontier.ts';

describe('TailFrontier', () => {
  it('stops the tail when a micro-batch does not fit, and continues it once a split reaches what was consumed', () => {
    const frontier = new TailFrontier(10);
    frontier.raiseCuts(new Map([[0, 100]]));
    expect(frontier.splitsFor(new Map([[0, 120]]), () => 100).splits).toEqual(new Map([[0, 100]]));
    expect(frontier.admitted([0], 8, 0)).toEqual(new Set([0]));
    frontier.committed(new Map([[0, 108]]), new Set([0]), new Set([0]));
    // 8 rows held, 5 more do not fit: the partition lags from 108 on.
    expect(frontier.admitted([0], 5, 8)).toEqual(new Set());
    frontier.committed(new Map([[0, 113]]), new Set([0]), new Set());
    expect(frontier.lagOffsets()).toBe(5);
    // Room again, but 108..113 are missing from the tail: appending 113.. would leave a hole.
    expect(frontier.admitted([0], 1, 0)).toEqual(new Set());
    // The archive reached 110 only: still lagging.
    frontier.splitApplied(frontier.splitsFor(new Map([[0, 110]]), () => 100));
    expect(frontier.lagOffsets()).toBe(3);
    // The archive passed what was consumed: the split stops at 113, and the tail continues.
    expect(frontier.splitsFor(new Map([[0, 150]]), () => 100).splits).toEqual(new Map([[0, 113]]));
    frontier.splitApplied({ splits: new Map([[0, 113]]), archived: new Map([[0, 113]]) });
    expect(frontier.lagOffsets()).toBe(0);
    expect(frontier.admitted([0], 1, 0)).toEqual(new Set([0]));
  });

  it('never splits past what the views hold: the consumed end, or a new batch cut above it', () => {
    const frontier = new TailFrontier(1_000);
    frontier.committed(new Map([[1, 40]]), new Set([1]), new Set([1]));
    expect(frontier.splitsFor(new Map([[1, 500], [2, 70]]), () => 0).splits).toEqual(new Map([[1, 40], [2, 0]]));
    // In a handoff the batch holds offsets below its cut: events may read the archive up to it.
    expect(frontier.splitsFor(new Map([[1, 500]]), (p) => (p === 1 ? 300 : 0)).splits.get(1)).toBe(300);
  });

  it('keeps the newest archived events in the tail: the split trails the archive by up to recentRows, moving a quarter at a time', () => {
    // 2 partitions share 200 recent rows: 100 each.
    const frontier = new TailFrontier(1_000, 200);
    for (const p of [0, 1]) frontier.committed(new Map([[p, 500]]), new Set([p]), new Set([p]));
    const apply = (end: number) => {
      const next = frontier.splitsFor(new Map([[0, end], [1, end]]), () => 0);
      frontier.splitApplied(next);
      return next.splits.get(0);
    };
    // The archive holds 0..80: the tail keeps them all (80 <= 100).
    expect(apply(80)).toBe(0);
    expect(apply(100)).toBe(0);
    // Past 100 retained offsets, the split moves to keep three quarters of them: 101 - 75.
    expect(apply(101)).toBe(26);
    expect(apply(126)).toBe(26);
    expect(apply(127)).toBe(52);
    // Room is for events not archived yet: 500 - 127 = 373 of them, whatever the tail holds besides.
    expect(frontier.admitted([0], 1_000 - 2 * 373, 900)).toEqual(new Set([0]));
    expect(frontier.admitted([0], 1_000 - 2 * 373 + 1, 900)).toEqual(new Set());
    // At a file's end where one lies between keeping all 100 and half of them, nearest 75.
    frontier.committed(new Map([[0, 900], [1, 900]]), new Set([0, 1]), new Set([0, 1]));
    const atFile = frontier.splitsFor(new Map([[0, 300], [1, 300]]), () => 0, (p) => (p === 0 ? [150, 210, 240, 300] : [190, 260]));
    expect(atFile.splits).toEqual(new Map([[0, 210], [1, 225]]));
    // The archive beyond what the tail holds: the split is the archive's end (the views' end).
    const lagging = new TailFrontier(1_000, 200);
    lagging.committed(new Map([[0, 50]]), new Set([0]), new Set());
    expect(lagging.splitsFor(new Map([[0, 40]]), () => 0).splits.get(0)).toBe(40);
  });

  // The model: the offsets `events` holds are the archive's below the split plus the tail's
  // rows; they must always be exactly the good offsets below eventsEnd, which must equal what
  // was consumed whenever the frontier says it does not lag.
  it('keeps events a contiguous prefix of the consumed good offsets, whatever the micro-batches, room and archive', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('batch' as const), partition: fc.integer({ min: 0, max: 2 }), records: fc.integer({ min: 1, max: 6 }), goodEvery: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant('archive' as const), partition: fc.integer({ min: 0, max: 2 }), records: fc.integer({ min: 0, max: 8 }) }),
      fc.record({ kind: fc.constant('prune' as const) }),
    );
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: 0, max: 12 }), fc.constant(1_000)), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })), fc.integer({ min: 1, max: 5 }), fc.array(step, { maxLength: 60 }), (maxRows, recentRows, fileEvery, steps) => {
        const frontier = new TailFrontier(maxRows, recentRows);
        const good = new Set<string>();
        const consumed = [0, 0, 0];
        const archiveEnd = [0, 0, 0];
        let tail: { partition: number; offset: number }[] = [];
        let splits = new Map<number, number>();
        const events = () => {
          const held = new Set<string>();
          for (let p = 0; p < 3; p++) for (let o = 0; o < (splits.get(p) ?? 0); o++) if (good.has(`${p}:${o}`)) held.add(`${p}:${o}`);
          for (const r of tail) if (r.offset >= (splits.get(r.partition) ?? 0)) held.add(`${r.partition}:${r.offset}`);
          return held;
        };
        for (const s of steps) {
          if (s.kind === 'batch') {
            const offsets = Array.from({ length: s.records }, (_, i) => consumed[s.partition]! + i);
            const goodOffsets = offsets.filter((o) => o % s.goodEvery === 0);
            for (const o of goodOffsets) good.add(`${s.partition}:${o}`);
            const withEvents = new Set(goodOffsets.length > 0 ? [s.partition] : []);
            const admitted = frontier.admitted(withEvents, goodOffsets.length, tail.length);
            if (admitted.has(s.partition)) tail.push(...goodOffsets.map((offset) => ({ partition: s.partition, offset })));
            consumed[s.partition]! += s.records;
            frontier.committed(new Map([[s.partition, consumed[s.partition]!]]), withEvents, admitted);
          } else if (s.kind === 'archive') {
            // The archiver writes what the log holds, whether the speed layer read it yet or not.
            archiveEnd[s.partition]! += s.records;
            // Files end at every fileEvery-th offset, and at the archive's end.
            const fileEnds = (p: number) => [...Array.from({ length: Math.floor(archiveEnd[p]! / fileEvery) }, (_, i) => (i + 1) * fileEvery), archiveEnd[p]!];
            const next = frontier.splitsFor(new Map(archiveEnd.map((end, p) => [p, end])), () => 0, fileEnds);
            splits = new Map(next.splits);
            frontier.splitApplied(next);
          } else {
            const applied = frontier.splits();
            tail = tail.filter((r) => r.offset >= (applied.get(r.partition) ?? 0));
            // Pruned, the tail holds at most maxRows events not archived and recentRows archived ones.
            expect(tail.length).toBeLessThanOrEqual(maxRows + recentRows);
          }
          const status = frontier.status();
          const expected = new Set<string>();
          for (const p of status) for (let o = 0; o < p.eventsEndExclusive; o++) if (good.has(`${p.partition}:${o}`)) expected.add(`${p.partition}:${o}`);
          expect(events()).toEqual(expected);
          for (const p of status) {
            expect(p.splitOffset).toBeLessThanOrEqual(p.eventsEndExclusive);
            expect(p.eventsEndExclusive).toBeLessThanOrEqual(p.consumedEndExclusive);
          }
          expect(frontier.lagOffsets() === 0).toBe(status.every((p) => p.eventsEndExclusive === consumed[p.partition]));
          if (maxRows >= 100) expect(frontier.lagOffsets()).toBe(0);
        }
      }),
      { numRuns: 300 },
    );
  });
});
