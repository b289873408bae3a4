import { Registry } from 'prom-client';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../core/observability/logger.ts';
import { BatchMetrics } from './batch-metrics.ts';
import { BatchRunAborted } from './batch-run-aborted.ts';
import { BatchScheduler } from './batch-scheduler.ts';

const logger = createLogger('scheduler-test', { level: 'silent' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function counter(registry: Registry, outcome: string): Promise<number> {
  const metric = await registry.getSingleMetric('lambda_batch_runs_total')!.get();
  return metric.values.filter((v) => v.labels['outcome'] === outcome).reduce((sum, v) => sum + v.value, 0);
}

describe('BatchScheduler', () => {
  it('runs on the cron schedule and never overlaps runs, skipping ticks while one is going', async () => {
    // Fake clock: node-cron's timers and Date; a run takes 1.6 s of it, ticks come every second.
    vi.useFakeTimers({ now: Date.UTC(2026, 0, 1, 0, 0, 0, 500) });
    try {
      const registry = new Registry();
      let active = 0;
      let maxActive = 0;
      let runs = 0;
      const scheduler = new BatchScheduler({
        schedule: '* * * * * *',
        run: async () => {
          active++;
          maxActive = Math.max(maxActive, active);
          await sleep(1_600);
          active--;
          return ++runs;
        },
        logger,
        metrics: new BatchMetrics(registry),
      });
      scheduler.start();
      // A tick every second, a run lasting 1.6 s: at least two runs start and a tick finds one going.
      await vi.advanceTimersByTimeAsync(4_700);
      const stopped = scheduler.stop();
      await vi.runAllTimersAsync();
      await stopped;
      expect(maxActive).toBe(1);
      expect(runs).toBeGreaterThanOrEqual(2);
      expect(await counter(registry, 'skipped')).toBeGreaterThanOrEqual(1);
      expect(await counter(registry, 'succeeded')).toBe(runs);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers runNow during a run with one more run after it, shared by every caller', async () => {
    let runs = 0;
    const events: string[] = [];
    let finishFirst: () => void = () => undefined;
    const firstMayFinish = new Promise<void>((resolve) => (finishFirst = resolve));
    const scheduler = new BatchScheduler({
      schedule: '0 0 1 1 *',
      run: async () => {
        const run = runs + 1;
        events.push(`start ${run}`);
        if (run === 1) await firstMayFinish; // the requests below all come while it runs
        events.push(`end ${run}`);
        return ++runs;
      },
      logger,
      metrics: new BatchMetrics(new Registry()),
    });
    const first = scheduler.runNow();
    const second = scheduler.runNow();
    const third = scheduler.runNow();
    finishFirst();
    expect((await first).version).toBe(1);
    expect((await second).version).toBe(2);
    expect((await third).version).toBe(2);
    expect(runs).toBe(2);
    expect(events).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('reports a failed run with its cause, counts it, and runs again on the next request', async () => {
    const registry = new Registry();
    let attempt = 0;
    const outcomes: boolean[] = [];
    const scheduler = new BatchScheduler({
      schedule: '0 0 1 1 *',
      run: async () => {
        if (++attempt === 1) throw new Error('disk full');
        return 7;
      },
      logger,
      metrics: new BatchMetrics(registry),
      onOutcome: (o) => outcomes.push(o.ok),
    });
    const failed = await scheduler.runNow();
    expect(failed).toMatchObject({ ok: false, error: 'disk full', reason: 'requested' });
    expect(await counter(registry, 'failed')).toBe(1);
    expect(await scheduler.runNow()).toMatchObject({ ok: true, version: 7 });
    expect(outcomes).toEqual([false, true]);
    expect(scheduler.lastOutcome?.ok).toBe(true);
  });

  it('counts a run stopped by the end of the leadership term as aborted, not failed', async () => {
    const registry = new Registry();
    const scheduler = new BatchScheduler({
      schedule: '0 0 1 1 *',
      run: async () => {
        throw new BatchRunAborted(new Error('leadership lost: session expired'));
      },
      logger,
      metrics: new BatchMetrics(registry),
    });
    expect(await scheduler.runNow()).toMatchObject({ ok: false, aborted: true });
    expect(await counter(registry, 'aborted')).toBe(1);
    expect(await counter(registry, 'failed')).toBe(0);
  });
});
