import { pino, type Logger } from 'pino';

/** One pino line as JSON: `level` is pino's number (40 warn, 50 error), `msg` the message. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/**
 * A real pino logger that writes to memory instead of stderr: a test that injects a fault reads
 * what was logged about it and asserts on it, and a green run prints no stack trace.
 */
export function memoryLogger(name = 'test', level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ name, level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}
