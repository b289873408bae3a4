import { describe, expect, it } from 'vitest';
import { formatDurationMs, formatExactDurationMs, parseDurationMs } from './duration.ts';

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

describe('formatExactDurationMs', () => {
  it.each([
    [250, '250ms', '250 milliseconds'],
    [60_000, '1m', '1 minute'],
    [90_000, '90s', '90 seconds'],
    [600_000, '10m', '10 minutes'],
    [5_400_000, '90m', '90 minutes'],
    [86_400_000, '1d', '1 day'],
  ])('writes %d ms as %s (long: %s), never rounded', (durationMs, short, long) => {
    expect(formatExactDurationMs(durationMs)).toBe(short);
    expect(formatExactDurationMs(durationMs, { long: true })).toBe(long);
  });

  it('is read back as the same milliseconds, in both forms', () => {
    for (let durationMs = 0; durationMs < 200_000_000; durationMs = durationMs * 3 + 7_000) {
      expect(parseDurationMs(formatExactDurationMs(durationMs))).toBe(durationMs);
      expect(parseDurationMs(formatExactDurationMs(durationMs, { long: true }))).toBe(durationMs);
    }
  });
});

describe('formatDurationMs', () => {
  it('rounds elapsed times for people', () => {
    expect(formatDurationMs(95_000)).toBe('2m');
    expect(formatDurationMs(800)).toBe('800ms');
  });
});
