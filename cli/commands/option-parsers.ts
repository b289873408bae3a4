import { InvalidArgumentError } from 'commander';
import { parseDurationMs } from '../../core/config/duration.ts';

/** Commander argument parsers: a bad value is an error naming it, never NaN or a silent zero. */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a whole number of at least 1`);
  return n;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`"${value}" is not a number above 0`);
  return n;
}

/** `10m`, `30s`, `1 minute` or milliseconds, as in the config file. */
export function durationMs(value: string): number {
  const ms = parseDurationMs(value);
  if (ms === undefined) throw new InvalidArgumentError(`"${value}" is not a duration (e.g. 30s, 10m, 1h)`);
  return ms;
}
