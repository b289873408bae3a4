import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The process logger: JSON lines on stderr (stdout stays for command output). `LOG_LEVEL`
 * overrides the level; tests default to `warn` so their output stays readable.
 */
export function createLogger(name: string, options: { level?: string } = {}): Logger {
  const level = options.level ?? process.env.LOG_LEVEL ?? (process.env.VITEST ? 'warn' : 'info');
  return pino({ name, level, base: { pid: process.pid } }, pino.destination(2));
}
