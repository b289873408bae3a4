import type { BackoffOptions as RetryBackoff } from '../../core/retry/retry.ts';

/** Redelivery backoff, as configured: the ceiling doubles per attempt from `initialMs` up to `maxMs`. */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 10_000 };

/**
 * The retry helper's backoff for redelivery, with "equal jitter": half the ceiling plus a random
 * part of the other half, so that retries neither hammer a recovering receiver in lockstep nor
 * collapse to zero.
 */
export function redeliveryBackoff(options: BackoffOptions): RetryBackoff {
  return { minDelayMs: options.initialMs, maxDelayMs: options.maxMs, jitter: 'equal' };
}
