import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

export type { Logger };

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * `LAMBDA_LOG_FORMAT` (set by `lambda --log-format`, and inherited by worker threads), else
 * pretty when the log's destination, stderr, is a terminal (a person reads it), else JSON lines
 * (a collector, or the test harness, which parses them).
 */
export function defaultLogFormat(): LogFormat {
  const fromEnv = process.env.LAMBDA_LOG_FORMAT;
  if (fromEnv === 'json' || fromEnv === 'pretty') return fromEnv;
  return process.stderr.isTTY ? 'pretty' : 'json';
}

/**
 * The process logger, on stderr (stdout stays for command output). `LOG_LEVEL` overrides the
 * level; tests default to `warn` so their output stays readable. Pretty output is written
 * synchronously, as pino.destination(2) is, so nothing is lost at exit.
 */
export function createLogger(name: string, options: { level?: string; format?: LogFormat } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? (process.env.VITEST ? 'warn' : 'info');
  const format = options.format ?? defaultLogFormat();
  const destination =
    format === 'pretty' ? pretty({ destination: 2, sync: true, colorize: process.stderr.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }) : pino.destination(2);
  return pino({ name, level, base: { pid: process.pid } }, destination);
}
