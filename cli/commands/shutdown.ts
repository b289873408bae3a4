import type { Logger } from '../../core/observability/logger.ts';

const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];
/**
 * Of a deadline, the part kept for halting (LambdaNode.halt) before the exit: the stop is given
 * up this long before the deadline, so that the process has exited by it.
 */
const HALT_BUDGET_MS = 1_500;

export interface ShutdownOptions {
  readonly logger: Logger;
  /** For tests; default process.exit. */
  readonly exit?: (code: number) => void;
}

/**
 * Resolves with the first SIGINT or SIGTERM. A second one ends the process at once, whatever is
 * still stopping (the operator's way out of a stop that takes too long): the signal's own
 * handling is restored and the signal raised again, so the process dies of it (a shell shows
 * 130 or 143) without running any teardown; tearing down threads that are busy in native code
 * (DuckDB, the ZooKeeper client) can abort the process instead.
 */
export function shutdownSignal(options: ShutdownOptions & { /** For tests; default: die of the signal. */ readonly dieOf?: (signal: ShutdownSignal) => void }): Promise<ShutdownSignal> {
  const dieOf = options.dieOf ?? dieOfSignal;
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
      dieOf(signal);
    };
    for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
  });
}

function dieOfSignal(signal: ShutdownSignal): void {
  for (const each of SHUTDOWN_SIGNALS) process.removeAllListeners(each);
  process.kill(process.pid, signal);
}

/**
 * Runs `stop` and exits: 0 once it is done, 1 when it fails or once `deadlineMs` passes first
 * (logging what still keeps the process alive). Before exiting 1, `halt` stops what must not be
 * torn down mid-way (given HALT_BUDGET_MS of the deadline). After a stop that is done, whatever
 * was left open (a timer, a socket, a worker) would keep the process running; it gets a short
 * grace to close by itself and is then named in a warning, and the process exits anyway.
 */
export async function stopWithinDeadline(
  stop: () => Promise<void>,
  options: ShutdownOptions & {
    readonly deadlineMs: number;
    readonly graceMs?: number;
    readonly halt?: () => Promise<void>;
    /** What the stop is doing, named in the log when the deadline passes. */
    readonly stoppingStep?: () => string | undefined;
  },
): Promise<void> {
  const { logger, deadlineMs } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const haltBudgetMs = options.halt ? Math.min(HALT_BUDGET_MS, deadlineMs / 4) : 0;
  const haltAndExit = async (code: number) => {
    if (options.halt) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([options.halt().catch((error: unknown) => logger.warn({ err: error }, 'halting failed')), new Promise((resolve) => (timer = setTimeout(resolve, haltBudgetMs)))]);
      clearTimeout(timer);
    }
    exit(code);
  };
  const startedAt = Date.now();
  let givenUp = false;
  const deadline = setTimeout(() => {
    givenUp = true;
    const step = options.stoppingStep?.();
    logger.error(
      { deadlineMs, ...(step ? { stoppingStep: step } : {}), stillOpen: process.getActiveResourcesInfo() },
      `not stopped within node.shutdownTimeout (${deadlineMs} ms)${step ? ` (still stopping the ${step})` : ''}; exiting`,
    );
    void haltAndExit(1);
  }, deadlineMs - haltBudgetMs);
  try {
    await stop();
  } catch (error) {
    clearTimeout(deadline);
    if (givenUp) return;
    logger.error({ err: error }, 'stopping failed; exiting');
    await haltAndExit(1);
    return;
  }
  clearTimeout(deadline);
  if (givenUp) return;
  logger.info({ stoppedInMs: Date.now() - startedAt }, 'stopped');
  process.exitCode = 0;
  const grace = setTimeout(() => {
    logger.warn({ stillOpen: process.getActiveResourcesInfo() }, 'stopped, but something still keeps the process alive; exiting');
    exit(0);
  }, options.graceMs ?? 1_000);
  grace.unref();
}
