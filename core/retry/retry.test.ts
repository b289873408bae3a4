import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoordinationError, LambdaError } from '../errors/index.ts';
import { backoffDelayMs, isRetriableError, retry } from './retry.ts';

const retriable = (message = 'connection loss') => new CoordinationError(message, { retriable: true });
const fatal = (message = 'session expired') => new CoordinationError(message, { retriable: false });

/** An fn failing with `errors` in turn, then returning 'ok'; records each attempt's number. */
function failing(errors: unknown[]) {
  const attempts: number[] = [];
  const fn = async ({ attempt }: { attempt: number }) => {
    attempts.push(attempt);
    const error = errors[attempt - 1];
    if (error !== undefined) throw error;
    return 'ok';
  };
  return { fn, attempts };
}

describe('retry', () => {
  it('retries retriable failures until the attempt succeeds', async () => {
    const { fn, attempts } = failing([retriable(), retriable()]);
    await expect(retry(fn, { minDelayMs: 1, maxDelayMs: 2 })).resolves.toBe('ok');
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('rejects with the error as thrown, at once, when it is not retriable', async () => {
    const error = fatal();
    const { fn, attempts } = failing([retriable(), error]);
    await expect(retry(fn, { minDelayMs: 1 })).rejects.toBe(error);
    expect(attempts).toEqual([1, 2]);
  });

  it('decides from the error\'s retriable flag alone by default (an Error without one is not retried)', async () => {
    expect(isRetriableError(retriable())).toBe(true);
    expect(isRetriableError(fatal())).toBe(false);
    expect(isRetriableError(Object.assign(new Error('kafkajs'), { retriable: true }))).toBe(true);
    expect(isRetriableError(new Error('plain'))).toBe(false);
    expect(isRetriableError('text')).toBe(false);
    const { fn, attempts } = failing([new Error('plain')]);
    await expect(retry(fn, { minDelayMs: 1 })).rejects.toThrow('plain');
    expect(attempts).toEqual([1]);
  });

  it('asks isRetriable when given, with the attempt number', async () => {
    const seen: number[] = [];
    const { fn } = failing([new Error('a'), new Error('b'), new Error('c')]);
    await expect(
      retry(fn, {
        minDelayMs: 1,
        isRetriable: (_error, attempt) => {
          seen.push(attempt);
          return attempt < 2;
        },
      }),
    ).rejects.toThrow('b');
    expect(seen).toEqual([1, 2]);
  });

  it('gives up after `retries` retries with the last error', async () => {
    const errors = [retriable('1'), retriable('2'), retriable('3'), retriable('4')];
    const { fn, attempts } = failing(errors);
    await expect(retry(fn, { retries: 2, minDelayMs: 1 })).rejects.toBe(errors[2]);
    expect(attempts).toEqual([1, 2, 3]);
    const once = failing([retriable('only')]);
    await expect(retry(once.fn, { retries: 0 })).rejects.toThrow('only');
    expect(once.attempts).toEqual([1]);
  });

  it('retries 5 times by default, without limit when only a deadline bounds it', async () => {
    const always = failing(Array.from({ length: 100 }, () => retriable()));
    await expect(retry(always.fn, { minDelayMs: 0, maxDelayMs: 0 })).rejects.toThrow();
    expect(always.attempts).toHaveLength(6);
    const bounded = failing(Array.from({ length: 1000 }, () => retriable()));
    await expect(retry(bounded.fn, { minDelayMs: 1, maxDelayMs: 1, jitter: 'none', deadlineMs: 200 })).rejects.toThrow();
    expect(bounded.attempts.length).toBeGreaterThan(6);
  });

  it('starts no attempt past the deadline, and tells the attempt in progress when it passes', async () => {
    const startedAt = Date.now();
    const starts: number[] = [];
    let sawAbort = false;
    const error = await retry(
      async ({ signal }) => {
        starts.push(Date.now() - startedAt);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 60);
          signal.addEventListener('abort', () => {
            sawAbort = true;
            clearTimeout(timer);
            resolve();
          });
        });
        throw retriable();
      },
      { minDelayMs: 50, maxDelayMs: 50, jitter: 'none', deadlineMs: 300 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CoordinationError);
    expect(Math.max(...starts)).toBeLessThan(300);
    expect(Date.now() - startedAt).toBeLessThan(450);
    expect(sawAbort || starts.length >= 3).toBe(true);
  });

  it('stops waiting at once when the signal aborts, rejecting with the last error', async () => {
    const controller = new AbortController();
    const error = retriable('down');
    const startedAt = Date.now();
    const pending = retry(
      async () => {
        throw error;
      },
      // Aborted once the 10 s wait has begun (onRetry comes just before it).
      { retries: Infinity, minDelayMs: 10_000, jitter: 'none', signal: controller.signal, onRetry: () => setImmediate(() => controller.abort(new Error('stopping'))) },
    );
    await expect(pending).rejects.toBe(error);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
  });

  it('runs no attempt when the signal aborted before, rejecting with its reason', async () => {
    const { fn, attempts } = failing([]);
    await expect(retry(fn, { signal: AbortSignal.abort(new LambdaError('closed')) })).rejects.toThrow('closed');
    expect(attempts).toEqual([]);
  });

  it('reports each retry with its delay before waiting', async () => {
    const reported: [string, number, number][] = [];
    const { fn } = failing([retriable('a'), retriable('b')]);
    await retry(fn, { minDelayMs: 4, maxDelayMs: 100, jitter: 'none', onRetry: (e, attempt, delayMs) => reported.push([(e as Error).message, attempt, delayMs]) });
    expect(reported).toEqual([
      ['a', 1, 4],
      ['b', 2, 8],
    ]);
  });
});

describe('backoffDelayMs', () => {
  it('doubles the ceiling per retry up to the maximum', () => {
    const options = { minDelayMs: 100, maxDelayMs: 1_000, jitter: 'none' } as const;
    expect([1, 2, 3, 4, 5, 50, 5_000].map((r) => backoffDelayMs(r, options))).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it('draws full jitter in [0, ceiling] and equal jitter in [ceiling / 2, ceiling]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (retryNumber, r) => {
        const ceiling = backoffDelayMs(retryNumber, { minDelayMs: 200, maxDelayMs: 10_000, jitter: 'none' });
        const full = backoffDelayMs(retryNumber, { minDelayMs: 200, maxDelayMs: 10_000 }, () => r);
        const equal = backoffDelayMs(retryNumber, { minDelayMs: 200, maxDelayMs: 10_000, jitter: 'equal' }, () => r);
        expect(full).toBeGreaterThanOrEqual(0);
        expect(full).toBeLessThanOrEqual(ceiling);
        expect(equal).toBeGreaterThanOrEqual(ceiling / 2);
        expect(equal).toBeLessThanOrEqual(ceiling);
        expect(ceiling).toBeLessThanOrEqual(10_000);
      }),
    );
  });
});
