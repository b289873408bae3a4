import type { DuckDBConnection } from '@duckdb/node-api';
import { isRunning, overallFraction, type BatchProgress, type ViewProgress } from '../core/batch/batch-progress.ts';
import type { BatchProgressStore } from '../core/coordination/batch-progress-store.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { RecomputeListener, RecomputeStep } from './recompute.ts';

export interface BatchRunProgressOptions {
  readonly store?: BatchProgressStore;
  /** The connection the run's queries go through: its `progress` is the running view's. */
  readonly connection: DuckDBConnection;
  readonly logger: Logger;
  readonly definitionsVersion: number;
  readonly batchVersion: number;
  readonly producedBy: string;
  readonly startedAtMs: number;
  /** False once this process may no longer write the record (its term ended). */
  readonly mayWrite: () => boolean;
  readonly intervalMs?: number;
}

/** Below 1 until the view's file is written: DuckDB's estimate reaches 100% before the COPY ends. */
const RUNNING_CEILING = 0.99;

/**
 * The progress record of one run (BatchProgress): fed by recompute's listener at view boundaries
 * and by DuckDB's query progress (`connection.progress`, a percentage of the rows the running
 * query's pipelines have read against DuckDB's estimate) sampled every `intervalMs` while a view's
 * COPY runs. DuckDB's figure stalls at the end of a pipeline (a big GROUP BY's finalize, the
 * Parquet write: measured at 61% for the last 60% of a 10 s query) and is -1 before its first
 * estimate, so a view's fraction is the running maximum of it, capped below 1 until the view is
 * done. Writes go to the store one at a time, the newest record winning; a failed write is logged
 * and never fails the run.
 */
export class BatchRunProgress implements RecomputeListener {
  private readonly views: Record<string, ViewProgress> = {};
  private readonly weights = new Map<string, number>();
  private running: string | undefined;
  private runningSinceMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private finished: Pick<BatchProgress, 'finishedAtMs' | 'outcome' | 'error'> | undefined;
  private writing: Promise<void> | undefined;
  private dirty = false;
  private updatedAtMs: number;

  constructor(private readonly options: BatchRunProgressOptions) {
    this.updatedAtMs = options.startedAtMs;
  }

  planned(steps: readonly RecomputeStep[]): void {
    for (const step of steps) {
      this.views[step.view] = { state: 'pending', fraction: 0, ...(step.extended ? { extended: true } : {}) };
      this.weights.set(step.view, step.weight);
    }
    this.timer = setInterval(() => this.sample(), this.options.intervalMs ?? 500);
    this.timer.unref();
    this.changed();
  }

  viewStarted(view: string): void {
    this.running = view;
    this.runningSinceMs = performance.now();
    this.views[view] = { ...this.views[view], state: 'running', fraction: 0 };
    this.changed();
  }

  viewDone(view: string): void {
    if (this.running === view) {
      this.running = undefined;
      const { batchVersion } = this.options;
      this.options.logger.debug({ batchVersion, view, extended: this.views[view]?.extended ?? false, tookMs: Math.round(performance.now() - this.runningSinceMs) }, 'batch run: view written');
    }
    this.views[view] = { ...this.views[view], state: 'done', fraction: 1 };
    this.changed();
  }

  /** Marks the run ended and waits until that record is written (or its write failed). */
  async finish(outcome: NonNullable<BatchProgress['outcome']>, error?: string): Promise<void> {
    clearInterval(this.timer);
    this.running = undefined;
    this.finished = { finishedAtMs: Date.now(), outcome, ...(error !== undefined ? { error } : {}) };
    this.changed();
    await this.writing;
  }

  snapshot(): BatchProgress {
    const views = structuredClone(this.views);
    return {
      definitionsVersion: this.options.definitionsVersion,
      batchVersion: this.options.batchVersion,
      producedBy: this.options.producedBy,
      startedAtMs: this.options.startedAtMs,
      updatedAtMs: this.updatedAtMs,
      views,
      fraction: this.finished?.outcome === 'published' ? 1 : overallFraction(views, this.weights),
      ...this.finished,
    };
  }

  private sample(): void {
    const view = this.running;
    if (view === undefined) return;
    const percentage = this.options.connection.progress.percentage;
    const current = this.views[view]!;
    if (percentage >= 0) this.views[view] = { ...current, fraction: Math.max(current.fraction, Math.min(RUNNING_CEILING, percentage / 100)) };
    this.changed();
  }

  private changed(): void {
    this.updatedAtMs = Date.now();
    this.dirty = true;
    this.writing ??= this.writeLoop();
  }

  /** Writes until nothing changed meanwhile; `writing` is cleared in the same step as the last check. */
  private async writeLoop(): Promise<void> {
    const { store, logger } = this.options;
    // Not synchronously inside changed(): `writing` must be set before the loop can end.
    await Promise.resolve();
    try {
      while (this.dirty) {
        this.dirty = false;
        if (!store || !this.options.mayWrite()) continue;
        await store.publish(this.snapshot()).catch((error: unknown) => logger.warn({ err: error, batchVersion: this.options.batchVersion }, 'cannot publish the batch progress; the run goes on'));
      }
    } finally {
      this.writing = undefined;
    }
  }
}

/**
 * For a new master: a record still running from another member is a run that ended without saying
 * so (its master died or lost its term mid-run); mark it aborted rather than leave readers waiting.
 * Never throws: the record is informational, and the log says why it could not be read or written.
 */
export async function endStaleProgress(store: BatchProgressStore, memberId: string, logger: Logger): Promise<void> {
  try {
    const record = await store.current();
    if (!record || !isRunning(record) || record.producedBy === memberId) return;
    const nowMs = Date.now();
    await store.publish({ ...record, updatedAtMs: nowMs, finishedAtMs: nowMs, outcome: 'aborted', error: `batch master ${record.producedBy} stopped before finishing` });
  } catch (error) {
    logger.warn({ err: error }, 'cannot end the previous master\'s batch progress record');
  }
}
