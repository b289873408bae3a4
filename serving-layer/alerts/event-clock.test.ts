import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { observeNewestBucket, slidingWindow, windowEndBucketStartMs, type EventClock } from './event-clock.ts';

const MINUTE = 60_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);

describe('event clock', () => {
  it('ends the window at the newest bucket while data flows, whatever the wall clock says', () => {
    let clock: EventClock | undefined;
    // A replay: event time runs 10 buckets per second of processing time.
    for (let i = 0; i < 20; i++) {
      clock = observeNewestBucket(clock, T0 + i * MINUTE, 1_000_000 + i * 100, MINUTE, MINUTE);
      expect(windowEndBucketStartMs(clock!, 1_000_000 + i * 100, MINUTE, MINUTE)).toBe(T0 + i * MINUTE);
    }
  });

  it('advances with the wall clock once the newest bucket has not moved for `idle`', () => {
    const clock = observeNewestBucket(undefined, T0, 5_000, MINUTE, MINUTE)!;
    expect(windowEndBucketStartMs(clock, 5_000 + MINUTE, MINUTE, MINUTE)).toBe(T0);
    expect(windowEndBucketStartMs(clock, 5_000 + 2 * MINUTE - 1, MINUTE, MINUTE)).toBe(T0);
    expect(windowEndBucketStartMs(clock, 5_000 + 2 * MINUTE, MINUTE, MINUTE)).toBe(T0 + MINUTE);
    expect(windowEndBucketStartMs(clock, 5_000 + 7 * MINUTE, MINUTE, MINUTE)).toBe(T0 + 6 * MINUTE);
  });

  it('ignores data older than the current end and re-anchors on newer data', () => {
    const clock = observeNewestBucket(undefined, T0, 0, MINUTE, 0)!;
    // Idle for 3 minutes: the end is at T0 + 3 min; a late bucket at T0 + 1 min does not pull it back.
    expect(observeNewestBucket(clock, T0 + MINUTE, 3 * MINUTE, MINUTE, 0)).toBe(clock);
    expect(observeNewestBucket(clock, null, 3 * MINUTE, MINUTE, 0)).toBe(clock);
    expect(observeNewestBucket(clock, T0 + 5 * MINUTE, 3 * MINUTE, MINUTE, 0)).toEqual({ anchorBucketStartMs: T0 + 5 * MINUTE, anchoredAtMs: 3 * MINUTE });
  });

  it('never moves the window end backwards', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gapMs: fc.integer({ min: 0, max: 3 * MINUTE }), bucket: fc.option(fc.integer({ min: 0, max: 30 }), { nil: null }) }), {
          maxLength: 60,
        }),
        fc.constantFrom(0, MINUTE, 5 * MINUTE),
        (steps, idleMs) => {
          let clock: EventClock | undefined;
          let nowMs = 0;
          let lastEnd = -Infinity;
          for (const step of steps) {
            nowMs += step.gapMs;
            clock = observeNewestBucket(clock, step.bucket === null ? null : T0 + step.bucket * MINUTE, nowMs, MINUTE, idleMs);
            if (!clock) continue;
            const end = windowEndBucketStartMs(clock, nowMs, MINUTE, idleMs);
            expect(end).toBeGreaterThanOrEqual(lastEnd);
            if (step.bucket !== null) expect(end).toBeGreaterThanOrEqual(T0 + step.bucket * MINUTE);
            expect((end - T0) % MINUTE).toBe(0);
            lastEnd = end;
          }
        },
      ),
    );
  });

  it('makes a window of whole buckets ending with the newest one', () => {
    expect(slidingWindow(T0 + 4 * MINUTE, 5 * MINUTE, MINUTE)).toEqual({ startMs: T0, endExclusiveMs: T0 + 5 * MINUTE });
  });
});
