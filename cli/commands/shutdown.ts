import type { Logger } from '../../core/observability/logger.ts';

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type ShutdownSignal = keyof typeof SIGNAL_EXIT_CODES;

export interface ShutdownOptions {
  readonly logger: Logger;
  /** For tests; default process.exit. */
  readonly exit?: (code: number) => void;
}

/**
 * Resolves with the first SIGINT or SIGTERM. A second one exits at once with the shell's code
 * for that signal (130, 143), whatever is still stopping: the operator's way out of a stop
 * that takes too long.
 */
export function shutdownSignal(options: ShutdownOptions): Promise<ShutdownSignal> {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  return new Promise((resolve) => {
    let received: ShutdownSignal | undefined;
    const onSignal = (signal: ShutdownSignal) => {
      if (received === undefined) {
        received = signal;
        options.logger.info({ signal }, 'shutting down');
        resolve(signal);
        return;
      }
      options.logger.warn({ signal }, 'second signal: exiting now');
      exit(SIGNAL_EXIT_CODES[signal]);
    };
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as ShutdownSignal[]) process.on(signal, onSignal);
  });
}

/**
 * Runs `stop` and exits: 0 once it is done, 1 once `deadlineMs` passes first (logging what still
 * keeps the process alive). After a stop that is done, whatever was left open (a timer, a socket,
 * a worker) would keep the process running; it gets a short grace to close by itself and is then
 * named in a warning, and the process exits anyway.
 */
export async function stopWithinDeadline(stop: () => Promise<void>, options: ShutdownOptions & { readonly deadlineMs: number; readonly graceMs?: number }): Promise<void> {
  const { logger, deadlineMs } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const startedAt = Date.now();
  const deadline = setTimeout(() => {
    logger.error({ deadlineMs, stillOpen: process.getActiveResourcesInfo() }, `not stopped within node.shutdownTimeout (${deadlineMs} ms); exiting`);
    exit(1);
  }, deadlineMs);
  try {
    await stop();
  } catch (error) {
    logger.error({ err: error }, 'stopping failed; exiting');
    clearTimeout(deadline);
    exit(1);
    return;
  }
  clearTimeout(deadline);
  logger.info({ stoppedInMs: Date.now() - startedAt }, 'stopped');
  process.exitCode = 0;
  const grace = setTimeout(() => {
    logger.warn({ stillOpen: process.getActiveResourcesInfo() }, 'stopped, but something still keeps the process alive; exiting');
    exit(0);
  }, options.graceMs ?? 1_000);
  grace.unref();
}
