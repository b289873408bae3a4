/**
 * Where a sliding alert window ends: in event time, with a processing-time fallback for a stream
 * that goes quiet. Pure; the evaluator keeps one clock per windowed view.
 *
 * An on-call engineer reads "avg over 5 minutes" as the last 5 minutes of *event time*: a replay
 * or a consumer catching up must see the windows the data belongs to, not an empty "now". So the
 * window ends at the newest bucket the view holds (batch ∪ realtime). But when events stop
 * arriving the newest bucket stops moving, and an alert on the old data would fire forever. So
 * once the newest bucket has not moved for `idleMs` of processing time, the clock advances with
 * the wall clock from there, the window slides past the old data, and instances resolve.
 *
 * Invariant: the window end never moves backwards. Data newer than the end re-anchors the clock
 * on that data; data older than it (late events, a lagging partition) is merged into whichever
 * windows still cover its bucket.
 */
export interface EventClock {
  /** Start of the bucket the clock was last anchored on (event time). */
  readonly anchorBucketStartMs: number;
  /** Processing time at which that bucket was first seen. */
  readonly anchoredAtMs: number;
}

/** Start of the newest bucket a window may cover at `nowMs`. */
export function windowEndBucketStartMs(clock: EventClock, nowMs: number, bucketMs: number, idleMs: number): number {
  const idleAdvanceMs = Math.max(0, nowMs - clock.anchoredAtMs - idleMs);
  return clock.anchorBucketStartMs + Math.floor(idleAdvanceMs / bucketMs) * bucketMs;
}

/** The clock after seeing `newestBucketStartMs` (null: the view holds no bucket at or after the end). */
export function observeNewestBucket(
  clock: EventClock | undefined,
  newestBucketStartMs: number | null,
  nowMs: number,
  bucketMs: number,
  idleMs: number,
): EventClock | undefined {
  if (newestBucketStartMs === null) return clock;
  if (clock && newestBucketStartMs <= windowEndBucketStartMs(clock, nowMs, bucketMs, idleMs)) return clock;
  return { anchorBucketStartMs: newestBucketStartMs, anchoredAtMs: nowMs };
}

/** A sliding window over whole buckets: `[startMs, endExclusiveMs)` in event time. */
export interface EventWindow {
  readonly startMs: number;
  readonly endExclusiveMs: number;
}

/** The `windowMs`-long window whose last bucket starts at `endBucketStartMs`. */
export function slidingWindow(endBucketStartMs: number, windowMs: number, bucketMs: number): EventWindow {
  const endExclusiveMs = endBucketStartMs + bucketMs;
  return { startMs: endExclusiveMs - windowMs, endExclusiveMs };
}
