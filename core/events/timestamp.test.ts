import { describe, expect, it } from 'vitest';
import { parseTimestampMs } from './timestamp.ts';

describe('parseTimestampMs', () => {
  it.each([
    ['2026-11-21T09:00:00Z', Date.UTC(2026, 10, 21, 9)],
    ['2026-11-21T09:00:00.123456Z', Date.UTC(2026, 10, 21, 9, 0, 0, 123)],
    ['2026-11-21 09:00:00', Date.UTC(2026, 10, 21, 9)],
    ['2026-11-21T09:00', Date.UTC(2026, 10, 21, 9)],
    ['2026-11-21', Date.UTC(2026, 10, 21)],
    ['2026-11-21T10:00:00+01:00', Date.UTC(2026, 10, 21, 9)],
    ['2026-11-21T10:00:00+0100', Date.UTC(2026, 10, 21, 9)],
    ['2026-11-21T04:00:00-05', Date.UTC(2026, 10, 21, 9)],
    [1_763_715_600_000, 1_763_715_600_000],
    [1_763_715_600_000.9, 1_763_715_600_000],
  ])('reads %s', (input, expected) => {
    expect(parseTimestampMs(input)).toBe(expected);
  });

  it.each(['March 7 2026', '2026-13-01', '2026-02-30', '21/11/2026', '', 'NaN', -1, Number.POSITIVE_INFINITY, null, {}, '1763715600000'])(
    'rejects %s',
    (input) => {
      expect(parseTimestampMs(input)).toBeUndefined();
    },
  );
});
