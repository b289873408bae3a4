/**
 * Event-time parsing: ISO-8601 strings (a missing zone means UTC) or epoch milliseconds.
 * Strict on purpose: `Date.parse` alone accepts free text such as "March 7", which would turn
 * garbage into plausible times instead of rejected records.
 */
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Plausible event times: years 1970 to 9999, in epoch milliseconds. */
const MIN_MS = 0;
const MAX_MS = 253_402_300_799_999;

export function parseTimestampMs(value: unknown): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= MIN_MS && value <= MAX_MS ? Math.floor(value) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  // Most producers write Date.prototype.toISOString(): parse that form without a regex (this is
  // the hot path of decoding); anything else takes the general route below.
  if (value.length === 24) {
    const fast = parseCanonicalIsoMs(value);
    if (fast !== undefined) return fast;
  }
  const match = ISO_8601.exec(value.trim());
  if (!match) return undefined;
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone] = match;
  let normalizedZone = zone === undefined || zone === 'z' ? 'Z' : zone;
  if (/^[+-]\d{2}$/.test(normalizedZone)) normalizedZone += ':00';
  else if (/^[+-]\d{4}$/.test(normalizedZone)) normalizedZone = `${normalizedZone.slice(0, 3)}:${normalizedZone.slice(3)}`;
  const millis = fraction.padEnd(3, '0').slice(0, 3);
  const iso = `${year}-${month}-${day}T${hour}:${minute}:${second}.${millis}${normalizedZone}`;
  const parsed = Date.parse(iso);
  // Date.parse rolls 2026-02-31 over to March; a round trip of the date part catches it.
  if (!Number.isFinite(parsed) || parsed < MIN_MS || parsed > MAX_MS) return undefined;
  if (normalizedZone === 'Z' && new Date(parsed).toISOString().slice(0, 10) !== `${year}-${month}-${day}`) return undefined;
  return parsed;
}

const DIGIT_0 = 48;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Digits of `text` from `start` to `end` as a number, or -1 when one is not a digit. */
function digits(text: string, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - DIGIT_0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** `YYYY-MM-DDTHH:MM:SS.sssZ` exactly, with every field in range; otherwise undefined. */
function parseCanonicalIsoMs(text: string): number | undefined {
  if (text[4] !== '-' || text[7] !== '-' || text[10] !== 'T' || text[13] !== ':' || text[16] !== ':' || text[19] !== '.' || text[23] !== 'Z') return undefined;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  const hour = digits(text, 11, 13);
  const minute = digits(text, 14, 16);
  const second = digits(text, 17, 19);
  const millis = digits(text, 20, 23);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || millis < 0) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1]!)) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second, millis);
}
