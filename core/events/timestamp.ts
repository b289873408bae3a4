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
