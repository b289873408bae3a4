import cron, { type ScheduledTask } from 'node-cron';
import type { BatchRunOutcome, BatchRunReason } from '../core/coordination/batch-run-requests.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { BatchMetrics } from './batch-metrics.ts';
import { BatchRunAborted } from './batch-run-aborted.ts';

export type { BatchRunOutcome, BatchRunReason } from '../core/coordination/batch-run-requests.ts';

export interface BatchSchedulerOptions {
  /** A node-cron expression (5 fields, or 6 with seconds first). */
  readonly schedule: string;
  readonly timezone?: string;
  /** One batch run; resolves with the published version. */
  readonly run: (reason: BatchRunReason) => Promise<number>;
  readonly logger: Logger;
  readonly metrics: BatchMetrics;
  /** Told of every run's outcome. */
  readonly onOutcome?: (outcome: BatchRunOutcome) => void;
}

/**
 * Runs the batch on a cron schedule, never two runs at once: a tick that finds a run going is
 * skipped (and counted); `runNow()` during a run queues exactly one more run after it, shared
 * by every caller meanwhile, so a request always sees data at least as new as when it was made.
 * A failed run is logged with its cause and counted; the next tick simply tries again.
 */
export class BatchScheduler {
  private task: ScheduledTask | undefined;
  private running: Promise<BatchRunOutcome> | undefined;
  private queued: Promise<BatchRunOutcome> | undefined;
  private last: BatchRunOutcome | undefined;

  constructor(private readonly options: BatchSchedulerOptions) {}

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  get lastOutcome(): BatchRunOutcome | undefined {
    return this.last;
  }

  /** When the next scheduled run is due, while started. */
  nextRunAt(): Date | undefined {
    return this.task?.getNextRun() ?? undefined;
  }

  start(): void {
    if (this.task) return;
    const { logger } = this.options;
    this.task = cron.createTask(this.options.schedule, () => this.tick(), {
      name: 'lambda-batch',
      ...(this.options.timezone ? { timezone: this.options.timezone } : {}),
      logger: {
        info: (message) => logger.debug({ cron: true }, message),
        warn: (message) => logger.debug({ cron: true }, message),
        error: (message, err) => logger.warn({ cron: true, err }, String(message)),
        debug: (message) => logger.debug({ cron: true }, String(message)),
      },
    });
    void this.task.start();
  }

  /** Stops the schedule and waits for a run in progress (and a queued one) to end. */
  async stop(): Promise<void> {
    const task = this.task;
    this.task = undefined;
    await task?.destroy();
    await this.queued;
    await this.running;
  }

  /** A run now, or one queued after the running one (shared: it keeps the first caller's reason). */
  runNow(reason: BatchRunReason = 'requested'): Promise<BatchRunOutcome> {
    if (!this.running) return this.execute(reason);
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.execute(reason);
    });
    return this.queued;
  }

  private tick(): void {
    if (this.running) {
      this.options.metrics.runs.inc({ outcome: 'skipped', reason: 'scheduled' });
      this.options.logger.info('batch run still going at the scheduled time; skipping this tick');
      return;
    }
    void this.execute('scheduled');
  }

  private execute(reason: BatchRunReason): Promise<BatchRunOutcome> {
    const run = this.attempt(reason).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async attempt(reason: BatchRunReason): Promise<BatchRunOutcome> {
    const { metrics, logger } = this.options;
    const startedAt = new Date();
    const timer = metrics.runDuration.startTimer();
    let outcome: BatchRunOutcome;
    try {
      const version = await this.options.run(reason);
      timer();
      metrics.runs.inc({ outcome: 'succeeded', reason });
      metrics.lastSuccessSeconds.set(Date.now() / 1000);
      outcome = { ok: true, reason, version, startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString() };
    } catch (error) {
      if (error instanceof BatchRunAborted) {
        metrics.runs.inc({ outcome: 'aborted', reason });
        logger.info({ reason, cause: error.message }, 'batch run stopped before publishing');
      } else {
        metrics.runs.inc({ outcome: 'failed', reason });
        logger.error({ err: error, reason }, 'batch run failed; the previous version keeps serving and the next run retries');
      }
      const message = error instanceof Error ? error.message : String(error);
      const aborted = error instanceof BatchRunAborted;
      outcome = { ok: false, reason, error: message, ...(aborted ? { aborted } : {}), startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString() };
    }
    this.last = outcome;
    this.options.onOutcome?.(outcome);
    return outcome;
  }
}
