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

  it('reads the toISOString() form exactly as the general parser does, for random times', () => {
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(Math.random() * 253_402_300_799_999);
      const iso = new Date(ms).toISOString();
      if (iso.length === 24) expect(parseTimestampMs(iso)).toBe(ms);
    }
  });

  it.each(['2026-02-29T00:00:00.000Z', '2026-04-31T00:00:00.000Z', '2026-11-21T24:00:00.000Z', '2026-11-21T09:60:00.000Z', '2026-11-21T09:00:00.00xZ', '1969-12-31T23:59:59.999Z'])(
    'rejects the impossible canonical form %s',
    (input) => {
      expect(parseTimestampMs(input)).toBeUndefined();
    },
  );

  it('accepts February 29 of a leap year in the canonical form', () => {
    expect(parseTimestampMs('2024-02-29T12:00:00.000Z')).toBe(Date.UTC(2024, 1, 29, 12));
    expect(parseTimestampMs('2000-02-29T12:00:00.000Z')).toBe(Date.UTC(2000, 1, 29, 12));
    expect(parseTimestampMs('1900-02-29T12:00:00.000Z')).toBeUndefined();
  });

  it.each(['March 7 2026', '2026-13-01', '2026-02-30', '21/11/2026', '', 'NaN', -1, Number.POSITIVE_INFINITY, null, {}, '1763715600000'])(
    'rejects %s',
    (input) => {
      expect(parseTimestampMs(input)).toBeUndefined();
    },
  );
});
