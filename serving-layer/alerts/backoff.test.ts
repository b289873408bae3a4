import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../core/retry/retry.ts';
import { redeliveryBackoff } from './backoff.ts';

describe('redeliveryBackoff', () => {
  it('doubles the ceiling per attempt up to the maximum, waiting between half of it and all of it', () => {
    const options = redeliveryBackoff({ initialMs: 100, maxMs: 1_000 });
    expect([1, 2, 3, 4, 5, 50].map((a) => backoffDelayMs(a, options, () => 1))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect([1, 2, 3, 4, 5, 50].map((a) => backoffDelayMs(a, options, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it('stays within [ceiling / 2, ceiling] for any attempt and random draw', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const delay = backoffDelayMs(attempt, redeliveryBackoff({ initialMs: 200, maxMs: 10_000 }), () => r);
        expect(delay).toBeGreaterThanOrEqual(100);
        expect(delay).toBeLessThanOrEqual(10_000);
      }),
    );
  });
});
