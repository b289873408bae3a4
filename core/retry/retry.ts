import { setTimeout as sleep } from 'node:timers/promises';

/** How the wait before a retry is drawn below its exponential ceiling. */
export type Jitter =
  /** Uniform in [0, ceiling] (AWS's "full jitter"): retriers spread out the most. */
  | 'full'
  /** Uniform in [ceiling / 2, ceiling]: spread out, but never much sooner than the ceiling. */
  | 'equal'
  /** The ceiling itself. */
  | 'none';

export interface BackoffOptions {
  /** The ceiling of the first wait (default 100 ms); it doubles per retry... */
  readonly minDelayMs?: number;
  /** ...up to this (default 5 s). */
  readonly maxDelayMs?: number;
  /** Default 'full'. */
  readonly jitter?: Jitter;
}

export interface RetryOptions extends BackoffOptions {
  /**
   * Retries after the first attempt. Default: unbounded when `deadlineMs` is given (the deadline
   * bounds them), else 5. `Infinity` retries until the signal aborts.
   */
  readonly retries?: number;
  /** No attempt starts later than this many ms after the first one started. */
  readonly deadlineMs?: number;
  /** Aborting stops the retries: no new attempt starts, a wait in progress ends at once. */
  readonly signal?: AbortSignal;
  /** Whether `error` may go away on a retry; default: its `retriable` flag (LambdaError, kafkajs). */
  readonly isRetriable?: (error: unknown, attempt: number) => boolean;
  /** Called after a failed attempt that will be retried, before the wait. */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** For tests: a number in [0, 1). */
  readonly random?: () => number;
}

export interface AttemptContext {
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborts when the caller's signal does or the deadline passes: pass it to what the attempt waits on. */
  readonly signal: AbortSignal;
}

const DEFAULT_RETRIES = 5;
const DEFAULT_MIN_DELAY_MS = 100;
const DEFAULT_MAX_DELAY_MS = 5_000;

/** The error's own `retriable` flag, as LambdaError and kafkajs errors carry it; false when absent. */
export function isRetriableError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retriable?: unknown }).retriable === true;
}

/** The wait before retry `retry` (1 for the first retry): exponential ceiling, then jitter. */
export function backoffDelayMs(retry: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const minDelayMs = options.minDelayMs ?? DEFAULT_MIN_DELAY_MS;
  const maxDelayMs = Math.max(minDelayMs, options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
  const ceilingMs = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(Math.max(retry - 1, 0), 30));
  switch (options.jitter ?? 'full') {
    case 'full':
      return random() * ceilingMs;
    case 'equal':
      return ceilingMs / 2 + random() * (ceilingMs / 2);
    case 'none':
      return ceilingMs;
  }
}

/**
 * Runs `fn` until it succeeds, retrying a retriable failure after an exponential, jittered wait
 * (kafkajs's retrier: the error alone says whether a retry can help). Gives up, rejecting with the
 * last attempt's error as it was thrown, when the error is not retriable, the retries are used up,
 * the next attempt would start past the deadline, or the signal aborts (then with the signal's
 * reason if no attempt ran). An attempt in progress is not interrupted; it gets a signal to stop
 * its own waits.
 */
export async function retry<T>(fn: (context: AttemptContext) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const startedAtMs = Date.now();
  const retries = options.retries ?? (options.deadlineMs === undefined ? DEFAULT_RETRIES : Infinity);
  const isRetriable = options.isRetriable ?? isRetriableError;
  const signals = [options.signal, options.deadlineMs === undefined ? undefined : AbortSignal.timeout(Math.max(0, options.deadlineMs))];
  const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
  options.signal?.throwIfAborted();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn({ attempt, signal });
    } catch (error) {
      if (attempt > retries || options.signal?.aborted || !isRetriable(error, attempt)) throw error;
      const delayMs = backoffDelayMs(attempt, options, options.random);
      const leftMs = options.deadlineMs === undefined ? Infinity : startedAtMs + options.deadlineMs - Date.now();
      if (delayMs >= leftMs) throw error;
      options.onRetry?.(error, attempt, delayMs);
      const aborted = await sleep(delayMs, false, { signal: options.signal }).catch(() => true);
      if (aborted) throw error;
    }
  }
}
