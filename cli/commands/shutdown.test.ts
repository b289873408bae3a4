import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { shutdownSignal, stopWithinDeadline } from './shutdown.ts';

const logger = createLogger('shutdown-test', { level: 'silent' });

describe('shutdown', () => {
  const before = { SIGINT: process.listeners('SIGINT'), SIGTERM: process.listeners('SIGTERM') };

  afterEach(() => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      for (const listener of process.listeners(signal)) if (!before[signal].includes(listener)) process.off(signal, listener);
    }
    process.exitCode = undefined;
  });

  it('resolves with the first signal and dies of the second', async () => {
    const diedOf: string[] = [];
    const first = shutdownSignal({ logger, dieOf: (signal) => diedOf.push(signal) });
    process.emit('SIGTERM', 'SIGTERM');
    await expect(first).resolves.toBe('SIGTERM');
    expect(diedOf).toEqual([]);
    process.emit('SIGTERM', 'SIGTERM');
    process.emit('SIGINT', 'SIGINT');
    expect(diedOf).toEqual(['SIGTERM', 'SIGINT']);
  });

  it('exits with 1 once the deadline passes before the stop is done', async () => {
    const exits: number[] = [];
    const startedAt = Date.now();
    let release = (): void => undefined;
    const stopping = stopWithinDeadline(() => new Promise<void>((resolve) => (release = resolve)), { logger, deadlineMs: 100, exit: (code) => exits.push(code) });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(exits).toEqual([1]);
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    release();
    await stopping;
  });

  it('leaves the exit code 0 once stopped, and exits 0 after the grace when something is still open', async () => {
    const exits: number[] = [];
    const lingering = setInterval(() => undefined, 1_000);
    try {
      await stopWithinDeadline(async () => undefined, { logger, deadlineMs: 100, graceMs: 50, exit: (code) => exits.push(code) });
      expect(process.exitCode).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(exits).toEqual([0]);
    } finally {
      clearInterval(lingering);
    }
  });

  it('halts before exiting past the deadline, and has exited by the deadline', async () => {
    const events: string[] = [];
    const startedAt = Date.now();
    let exitedAfterMs = -1;
    let release = (): void => undefined;
    const stopping = stopWithinDeadline(() => new Promise<void>((resolve) => (release = resolve)), {
      logger,
      deadlineMs: 400,
      halt: async () => {
        events.push('halt');
        await new Promise((resolve) => setTimeout(resolve, 20));
        events.push('halted');
      },
      exit: (code) => {
        exitedAfterMs = Date.now() - startedAt;
        events.push(`exit ${code}`);
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(events).toEqual(['halt', 'halted', 'exit 1']);
    expect(exitedAfterMs).toBeLessThanOrEqual(400 + 50);
    release();
    await stopping;
    expect(events).toHaveLength(3);
  });

  it('exits past the deadline even when halting hangs', async () => {
    const exits: number[] = [];
    let release = (): void => undefined;
    const stopping = stopWithinDeadline(() => new Promise<void>((resolve) => (release = resolve)), {
      logger,
      deadlineMs: 200,
      halt: () => new Promise<void>(() => undefined),
      exit: (code) => exits.push(code),
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(exits).toEqual([1]);
    release();
    await stopping;
  });

  it('exits with 1 when the stop fails', async () => {
    const exits: number[] = [];
    await stopWithinDeadline(() => Promise.reject(new Error('broken')), { logger, deadlineMs: 1_000, exit: (code) => exits.push(code) });
    expect(exits).toEqual([1]);
  });
});
