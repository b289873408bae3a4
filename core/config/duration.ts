import ms from 'ms';

/**
 * Parses a duration as written in the config: `250ms`, `1s`, `5m`, `1h`, `1 minute`, `5 minutes`,
 * or a bare number of milliseconds. Returns milliseconds, or `undefined` when it is not a duration.
 */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const text = value.trim();
  if (text === '') return undefined;
  const parsed = ms(text as ms.StringValue);
  return typeof parsed === 'number' && Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}

/** Formats an elapsed time for people, rounded to its largest unit (`2m` for 95 s), as `ago` texts want. */
export function formatDurationMs(durationMs: number): string {
  return ms(durationMs);
}

const UNITS: readonly { ms: number; short: string; long: string }[] = [
  { ms: 86_400_000, short: 'd', long: 'day' },
  { ms: 3_600_000, short: 'h', long: 'hour' },
  { ms: 60_000, short: 'm', long: 'minute' },
  { ms: 1_000, short: 's', long: 'second' },
  { ms: 1, short: 'ms', long: 'millisecond' },
];

/**
 * Formats a configured duration (a view's window, a timeout) as the config writes it, in the
 * largest unit that holds it exactly (`1m`, `90s`, `250ms`; long: `1 minute`, `90 seconds`, which
 * DuckDB also reads as an INTERVAL). Parsing the result gives back the same milliseconds.
 */
export function formatExactDurationMs(durationMs: number, options: { long?: boolean } = {}): string {
  const unit = UNITS.find((u) => durationMs !== 0 && Number.isInteger(durationMs / u.ms)) ?? UNITS.at(-1)!;
  const count = durationMs / unit.ms;
  if (!options.long) return `${count}${unit.short}`;
  return `${count} ${unit.long}${count === 1 ? '' : 's'}`;
}
