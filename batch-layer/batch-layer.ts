import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { rm } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import type { BatchManifest } from '../core/batch/batch-manifest.ts';
import type { BatchProgress } from '../core/batch/batch-progress.ts';
import { viewsToBackfill } from '../core/batch/views-to-backfill.ts';
import type { LoadedConfig } from '../core/config/load-config.ts';
import type { BatchManifestStore } from '../core/coordination/batch-manifest-store.ts';
import type { BatchProgressStore } from '../core/coordination/batch-progress-store.ts';
import type { BatchRunOutcome, BatchRunReason, BatchRunRequests } from '../core/coordination/batch-run-requests.ts';
import type { LeaderElection, Leadership } from '../core/coordination/leadership.ts';
import { CoordinationError } from '../core/errors/index.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { StorageLayout } from '../core/storage/storage-layout.ts';
import { bindViews } from '../core/views/bind-views.ts';
import { publishedSummary, type BatchLayerStatus } from './batch-layer-status.ts';
import { BatchMetrics } from './batch-metrics.ts';
import { BatchRunAborted } from './batch-run-aborted.ts';
import { BatchRunProgress, endStaleProgress } from './batch-run-progress.ts';
import { BatchScheduler } from './batch-scheduler.ts';
import { recompute } from './recompute.ts';
import { nextVersion, retainVersions } from './version-retention.ts';

export type { BatchLayerStatus } from './batch-layer-status.ts';

export interface BatchLayerOptions {
  readonly loaded: LoadedConfig;
  readonly layout: StorageLayout;
  /** ZkLeaderElection in a cluster, StandaloneLeaderElection single-node; started and closed here. */
  readonly election: LeaderElection;
  readonly manifestStore: BatchManifestStore;
  /** Where `lambda batch run` requests arrive; served while this process is master. */
  readonly runRequests?: BatchRunRequests;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** The DuckDB the recompute runs on (default: a private in-memory instance). */
  readonly duckdb?: DuckDBInstance;
  /** Overrides `batch.schedule` (tests). */
  readonly schedule?: string;
  /** The master dataset's topic: the record source's (default: source.kafka.topic, else `events`). */
  readonly topic?: string;
  /** Where the master publishes its runs' progress (`batch/progress`); none: kept for status only. */
  readonly progressStore?: BatchProgressStore;
  /** The definitions version `loaded` holds (default 0); later ones come through applyDefinitions. */
  readonly definitionsVersion?: number;
}

/**
 * The batch role (DESIGN.md, "Data flow"): joins the batch-master election and, while master,
 * runs the recompute on the cron schedule and on request, publishes each version (fenced by the
 * leadership term) and prunes old versions. Losing the term stops the schedule and aborts a run
 * in progress, interrupting its DuckDB query; the next term starts only after that run is over.
 * It follows the cluster's definitions (applyDefinitions): the master backfills at once whatever
 * the published version does not hold as defined, and publishes each run's progress.
 */
export class BatchLayer {
  private readonly batchMetrics: BatchMetrics;
  private state: BatchLayerStatus['state'] = 'created';
  private scheduler: BatchScheduler | undefined;
  private stopServing: () => void = () => undefined;
  private stopping: Promise<void> = Promise.resolve();
  private lastRun: BatchRunOutcome | undefined;
  private runsSucceeded = 0;
  private runsFailed = 0;
  private readonly runListeners = new Set<(outcome: BatchRunOutcome) => void>();
  private removeLeadershipListener: () => void = () => undefined;
  /** A failed backfill is tried again after this delay (doubling up to a minute), not at the next cron tick. */
  private backfillRetryMs = 0;
  private backfillRetry: NodeJS.Timeout | undefined;
  /** What the next run computes; a run takes this snapshot when it starts and keeps it. */
  private definitions: { readonly loaded: LoadedConfig; readonly version: number };
  private lastProgress: BatchRunProgress | undefined;

  private constructor(
    private readonly options: BatchLayerOptions,
    private readonly duckdb: DuckDBInstance,
    private readonly ownsDuckdb: boolean,
    private readonly connection: DuckDBConnection,
    private readonly threads: number,
  ) {
    this.batchMetrics = new BatchMetrics(options.metrics);
    this.definitions = { loaded: options.loaded, version: options.definitionsVersion ?? 0 };
  }

  /** Opens DuckDB and binds every view's SQL (a ConfigError names the key at fault). */
  static async create(options: BatchLayerOptions): Promise<BatchLayer> {
    const duckdb = options.duckdb ?? (await DuckDBInstance.create(':memory:'));
    const connection = await duckdb.connect();
    let threadsInUse: number;
    try {
      await bindViews(options.loaded, connection);
      // DuckDB tracks a query's progress only with the progress bar on; it is never printed here.
      await connection.run('SET enable_progress_bar = true');
      await connection.run('SET enable_progress_bar_print = false');
      const threads = options.loaded.config.batch.threads;
      if (threads !== undefined && !options.duckdb) await connection.run(`SET threads = ${threads}`);
      threadsInUse = Number((await connection.runAndReadAll("SELECT current_setting('threads')")).getRows()[0]![0]);
    } catch (error) {
      connection.closeSync();
      if (!options.duckdb) duckdb.closeSync();
      throw error;
    }
    return new BatchLayer(options, duckdb, !options.duckdb, connection, threadsInUse);
  }

  get memberId(): string {
    return this.options.election.memberId;
  }

  get schedule(): string {
    return this.options.schedule ?? this.options.loaded.config.batch.schedule;
  }

  async start(): Promise<void> {
    if (this.state !== 'created') return;
    this.state = 'started';
    this.removeLeadershipListener = this.options.election.addListener({
      isLeader: (leadership) => this.onLeader(leadership),
      notLeader: (reason) => this.onNotLeader(reason),
    });
    if (this.options.election.state === 'latent') await this.options.election.start();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    await this.options.election.close();
    this.removeLeadershipListener();
    this.onNotLeader('stopped');
    await this.stopping;
    this.connection.closeSync();
    if (this.ownsDuckdb) this.duckdb.closeSync();
  }

  /**
   * Makes the next runs compute `loaded`'s views (issue 16: definitions followed without a restart).
   * They are bound in DuckDB first, on a connection of their own, and a ConfigError leaves the
   * running definitions as they were. A run in progress finishes with the definitions it started
   * with: aborting it would throw away its work on the views that did not change, and the run that
   * follows it extends those from its result. If this process is master and the published version
   * does not hold every view as defined, a backfill run starts now (or right after the running
   * one), or once `backfillAfter` settles: the co-located serving role's fills, which share the
   * cores (LambdaNode). Versions at or below the running one are ignored (a watch may deliver one twice).
   */
  async applyDefinitions(loaded: LoadedConfig, version: number, backfillAfter?: Promise<unknown>): Promise<void> {
    // Settled either way: fills that failed leave the backfill to start all the same.
    const after = backfillAfter?.catch(() => undefined);
    if (this.state === 'stopped') return;
    const connection = await this.duckdb.connect();
    try {
      await bindViews(loaded, connection);
    } finally {
      connection.closeSync();
    }
    if (version <= this.definitions.version) return;
    this.definitions = { loaded, version };
    this.options.logger.info({ definitionsVersion: version, views: loaded.views.map((v) => v.definition.name) }, 'batch layer: following new definitions');
    const leadership = this.options.election.leadership();
    if (!leadership) return;
    await after;
    // A newer version that came meanwhile backfills for itself.
    if (this.definitions.version === version) await this.backfillIfBehind(leadership);
  }

  /** Runs a batch now if this process is master; otherwise asks the master through the run requests. */
  runNow(): Promise<BatchRunOutcome> {
    if (this.scheduler) return this.scheduler.runNow();
    if (this.options.runRequests) return this.options.runRequests.request({ requestedBy: this.memberId });
    return Promise.reject(new CoordinationError('this process is not the batch master and has no way to reach it'));
  }

  /** Called after every run this process makes, with its outcome. */
  onRun(listener: (outcome: BatchRunOutcome) => void): () => void {
    this.runListeners.add(listener);
    return () => this.runListeners.delete(listener);
  }

  async status(): Promise<BatchLayerStatus> {
    const [master, published] = await Promise.all([
      // Status still answers while ZooKeeper does not: those fields are then unknown, and the log says why.
      this.options.election.leaderId().catch((error: unknown) => this.options.logger.warn({ err: error, memberId: this.memberId }, 'status: cannot read the batch master')),
      this.options.manifestStore.current().catch((error: unknown) => this.options.logger.warn({ err: error, memberId: this.memberId }, 'status: cannot read the published manifest')),
    ]);
    const nextRunAt = this.scheduler?.nextRunAt();
    const progress = await this.currentProgress();
    return {
      state: this.state,
      memberId: this.memberId,
      isMaster: this.options.election.leadership() !== undefined,
      ...(master ? { master } : {}),
      schedule: this.schedule,
      ...(nextRunAt ? { nextRunAt: nextRunAt.toISOString() } : {}),
      running: this.scheduler?.isRunning ?? false,
      ...(this.lastRun ? { lastRun: this.lastRun } : {}),
      runsSucceeded: this.runsSucceeded,
      runsFailed: this.runsFailed,
      definitionsVersion: this.definitions.version,
      threads: this.threads,
      ...(progress ? { progress } : {}),
      ...(published ? { published: publishedSummary(published) } : {}),
    };
  }

  private onLeader(leadership: Leadership): void {
    this.batchMetrics.isMaster.set(1);
    // A run of the previous term may still be ending on the shared connection: start after it.
    void this.stopping.then(() => {
      if (leadership.signal.aborted || this.state !== 'started' || this.scheduler) return;
      const scheduler = new BatchScheduler({
        schedule: this.schedule,
        ...(this.options.loaded.config.batch.timezone ? { timezone: this.options.loaded.config.batch.timezone } : {}),
        run: (reason) => this.runOnce(leadership, reason),
        logger: this.options.logger,
        metrics: this.batchMetrics,
        onOutcome: (outcome) => {
          this.record(outcome);
          if (outcome.reason === 'definitions') this.retryBackfillIfFailed(outcome, leadership);
        },
      });
      this.scheduler = scheduler;
      scheduler.start();
      const stopServing = this.options.runRequests?.serve(() => scheduler.runNow());
      this.stopServing = stopServing ?? (() => undefined);
      this.options.logger.info({ memberId: this.memberId, schedule: this.schedule }, 'batch master: schedule started');
      // Definitions changed while no master ran (or while this one ran its predecessor's): backfill now.
      const store = this.options.progressStore;
      void (store ? endStaleProgress(store, this.memberId, this.options.logger) : Promise.resolve()).then(() => this.backfillIfBehind(leadership));
    });
  }

  private onNotLeader(reason: string): void {
    this.batchMetrics.isMaster.set(0);
    clearTimeout(this.backfillRetry);
    this.backfillRetryMs = 0;
    const scheduler = this.scheduler;
    this.scheduler = undefined;
    this.stopServing();
    this.stopServing = () => undefined;
    if (!scheduler) return;
    this.options.logger.info({ memberId: this.memberId, reason }, 'no longer batch master: schedule stopped');
    const previous = this.stopping;
    this.stopping = previous.then(() => scheduler.stop());
  }

  /**
   * Starts a run at once when the published version lacks a view of the running definitions, or
   * holds one under another definition. Never throws: a failure to look is logged, and the next
   * scheduled run recomputes every view anyway.
   */
  private async backfillIfBehind(leadership: Leadership): Promise<void> {
    try {
      const manifest = await this.options.manifestStore.current();
      const missing = viewsToBackfill(manifest, this.definitions.loaded.views);
      const scheduler = this.scheduler;
      if (missing.length === 0 || !scheduler || leadership.signal.aborted) return;
      this.options.logger.info({ views: missing, definitionsVersion: this.definitions.version, publishedVersion: manifest?.version }, 'backfilling views the published batch version does not hold as defined');
      void scheduler.runNow('definitions');
    } catch (error) {
      this.options.logger.warn({ err: error }, 'cannot check the published batch version against the definitions; the next scheduled run recomputes every view');
    }
  }

  /**
   * The new views stay unexact until a backfill succeeds, so a failed one (a segment unreadable for
   * a while, ZooKeeper slow to take the publish) is retried after 1, 2, 4… up to 60 s while this
   * term lasts, checking again first that something is still missing.
   */
  private retryBackfillIfFailed(outcome: BatchRunOutcome, leadership: Leadership): void {
    clearTimeout(this.backfillRetry);
    if (outcome.ok || outcome.aborted || leadership.signal.aborted) {
      this.backfillRetryMs = 0;
      return;
    }
    this.backfillRetryMs = Math.min(60_000, Math.max(1_000, this.backfillRetryMs * 2));
    this.options.logger.warn({ retryInMs: this.backfillRetryMs, error: outcome.error }, 'backfill run failed; trying again');
    this.backfillRetry = setTimeout(() => void this.backfillIfBehind(leadership), this.backfillRetryMs);
    this.backfillRetry.unref();
  }

  private async currentProgress(): Promise<BatchProgress | undefined> {
    const local = this.lastProgress?.snapshot();
    const shared = await this.options.progressStore?.current().catch((error: unknown) => {
      this.options.logger.warn({ err: error, memberId: this.memberId }, 'status: cannot read the batch progress');
      return undefined;
    });
    return shared ?? local;
  }

  /** One batch run for `leadership`'s term: recompute, publish (fenced), prune. */
  private async runOnce(leadership: Leadership, reason: BatchRunReason): Promise<number> {
    const { layout, manifestStore, logger } = this.options;
    const { loaded, version: definitionsVersion } = this.definitions;
    const startedAtMs = Date.now();
    const interrupt = () => this.connection.interrupt();
    leadership.signal.addEventListener('abort', interrupt);
    let progress: BatchRunProgress | undefined;
    try {
      leadership.signal.throwIfAborted();
      const previous = await manifestStore.current();
      const version = await nextVersion(layout, previous?.version);
      progress = new BatchRunProgress({
        ...(this.options.progressStore ? { store: this.options.progressStore } : {}),
        connection: this.connection,
        logger,
        definitionsVersion,
        batchVersion: version,
        producedBy: this.memberId,
        startedAtMs,
        mayWrite: () => !leadership.signal.aborted,
      });
      this.lastProgress = progress;
      const manifest = await recompute({
        connection: this.connection,
        layout,
        topic: this.topic,
        schema: loaded.schema,
        views: loaded.views,
        blockSize: loaded.config.speed.blockSize,
        version,
        producedBy: this.memberId,
        ...(previous ? { previous } : {}),
        signal: leadership.signal,
        // A backfill run computes only the views the published version lacks, at its cuts, and takes
        // the others' state as it is: it costs about the recompute of the new views alone (it may
        // find none, when a run since its request computed them). Scheduled runs move the cuts on.
        extendUnchanged: reason === 'definitions',
        keepCuts: reason === 'definitions',
        listener: progress,
      });
      try {
        await manifestStore.publish(manifest, leadership);
      } catch (error) {
        // A publish of unknown outcome may yet show up in `batch/current`: its files must stay.
        if (!(error instanceof CoordinationError && error.context['outcomeUnknown'] === true)) await rm(layout.versionDir(version), { recursive: true, force: true });
        throw error;
      }
      this.batchMetrics.currentVersion.set(version);
      this.batchMetrics.eventsRead.set(manifest.eventsRead);
      logger.info({ version, cuts: manifest.cuts, eventsRead: manifest.eventsRead, durationMs: manifest.durationMs }, 'batch version published');
      await retainVersions(layout, { keep: loaded.config.storage.keepVersions, publishedVersion: version }).catch((error: unknown) =>
        logger.warn({ err: error }, 'cannot remove old batch versions; retrying after the next run'),
      );
      await progress.finish('published');
      return version;
    } catch (error) {
      // Whatever failed after the term ended failed because it ended (interrupted query, fence).
      const aborted = leadership.signal.aborted;
      await progress?.finish(aborted ? 'aborted' : 'failed', error instanceof Error ? error.message : String(error));
      if (aborted) throw new BatchRunAborted(leadership.signal.reason);
      throw error;
    } finally {
      leadership.signal.removeEventListener('abort', interrupt);
    }
  }

  private get topic(): string {
    return this.options.topic ?? this.options.loaded.config.source.kafka?.topic ?? 'events';
  }

  private record(outcome: BatchRunOutcome): void {
    if (outcome.ok) this.runsSucceeded++;
    else if (!outcome.aborted) this.runsFailed++;
    this.lastRun = outcome;
    for (const listener of [...this.runListeners]) listener(outcome);
  }
}
