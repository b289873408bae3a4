import type { Logger } from '../../core/observability/logger.ts';
import type { LocalLog } from '../../core/source/local-log.ts';
import { createClickstream } from './clickstream.ts';

const TICK_MS = 100;

/** Feeds the demo clickstream into the local log at a steady rate until stopped. */
export function startDemoGenerator(
  log: LocalLog,
  options: { eventsPerSecond: number; logger: Logger; seed?: number; spikeEveryMs?: number; spikeForMs?: number },
): { stop(): void } {
  const event = createClickstream({
    seed: options.seed ?? Date.now(),
    ...(options.spikeEveryMs === undefined ? {} : { spikeEveryMs: options.spikeEveryMs }),
    ...(options.spikeForMs === undefined ? {} : { spikeForMs: options.spikeForMs }),
  });
  let owed = 0;
  let busy = false;
  const timer = setInterval(() => {
    owed += (options.eventsPerSecond * TICK_MS) / 1000;
    if (busy || owed < 1) return;
    const count = Math.floor(owed);
    owed -= count;
    const now = Date.now();
    busy = true;
    log
      .append(Array.from({ length: count }, () => Buffer.from(event(now))))
      .catch((error: unknown) => options.logger.warn({ err: error }, 'demo generator could not append'))
      .finally(() => (busy = false));
  }, TICK_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
