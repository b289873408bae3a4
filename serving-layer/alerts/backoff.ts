/** Exponential backoff for redelivery: the ceiling doubles per attempt up to `maxMs`. */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 10_000 };

/**
 * The wait before retry `attempt` (1-based), with "equal jitter": half the ceiling, plus a random
 * part of the other half, so that retries neither hammer a recovering receiver in lockstep nor
 * collapse to zero.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const ceilingMs = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
  return ceilingMs / 2 + random() * (ceilingMs / 2);
}
