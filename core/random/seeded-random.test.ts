import { describe, expect, it } from 'vitest';
import { seededRandom } from './seeded-random.ts';

describe('seededRandom', () => {
  it('repeats its sequence for a seed, differs between seeds, and stays in [0, 1) spread evenly', () => {
    const take = (seed: number, n: number) => Array.from({ length: n }, seededRandom(seed));
    expect(take(7, 100)).toEqual(take(7, 100));
    expect(take(7, 100)).not.toEqual(take(8, 100));
    const values = take(42, 10_000);
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    // Ten equal bins of 10,000 draws: each within 15 % of 1,000 (a stuck or biased generator is far off).
    const bins = new Array<number>(10).fill(0);
    for (const v of values) bins[Math.floor(v * 10)]!++;
    for (const count of bins) {
      expect(count).toBeGreaterThan(850);
      expect(count).toBeLessThan(1_150);
    }
  });
});
