import { describe, expect, it } from 'vitest';
import { parseDurationMs } from './duration.ts';

describe('parseDurationMs', () => {
  it.each([
    ['250ms', 250],
    ['1s', 1_000],
    ['6s', 6_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1 minute', 60_000],
    ['5 minutes', 300_000],
    ['  30 seconds ', 30_000],
    [1500, 1_500],
  ])('reads %s as %d ms', (text, expected) => {
    expect(parseDurationMs(text)).toBe(expected);
  });

  it.each(['', 'soon', '5 parsecs', '-1s', -5, Number.NaN])('rejects %s', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});
