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

/** Formats milliseconds the way a person writes them in the config (`1m`, `250ms`). */
export function formatDurationMs(durationMs: number): string {
  return ms(durationMs);
}
