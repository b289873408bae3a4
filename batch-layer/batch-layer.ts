import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { rm } from 'node:fs/promises';
import type { Registry } from 'prom-client';
import type { BatchManifest } from '../core/batch/batch-manifest.ts';
import type { LoadedConfig } from '../core/config/load-config.ts';
import type { BatchManifestStore } from '../core/coordination/batch-manifest-store.ts';
import type { BatchRunOutcome, BatchRunRequests } from '../core/coordination/batch-run-requests.ts';
import type { LeaderElection, Leadership } from '../core/coordination/leadership.ts';
import { CoordinationError } from '../core/errors/index.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { StorageLayout } from '../core/storage/storage-layout.ts';
import { bindViews } from '../core/views/bind-views.ts';
import { BatchMetrics } from './batch-metrics.ts';
import { BatchRunAborted } from './batch-run-aborted.ts';
import { BatchScheduler } from './batch-scheduler.ts';
import { recompute } from './recompute.ts';
import { nextVersion, retainVersions } from './version-retention.ts';

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
}

export interface BatchLayerStatus {
  readonly state: 'created' | 'started' | 'stopped';
  readonly memberId: string;
  readonly isMaster: boolean;
  /** The current master's member id, as far as this process can tell. */
  readonly master?: string;
  readonly schedule: string;
  readonly nextRunAt?: string;
  readonly running: boolean;
  readonly lastRun?: BatchRunOutcome;
  readonly runsSucceeded: number;
  readonly runsFailed: number;
  /** The version serving now (from the manifest store). */
  readonly published?: Pick<BatchManifest, 'version' | 'cuts' | 'eventsRead' | 'finishedAt' | 'durationMs' | 'producedBy'>;
}

/**
 * The batch role (DESIGN.md, "Data flow"): joins the batch-master election and, while master,
 * runs the recompute on the cron schedule and on request, publishes each version (fenced by the
 * leadership term) and prunes old versions. Losing the term stops the schedule and aborts a run
 * in progress, interrupting its DuckDB query; the next term starts only after that run is over.
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

  private constructor(
    private readonly options: BatchLayerOptions,
    private readonly duckdb: DuckDBInstance,
    private readonly ownsDuckdb: boolean,
    private readonly connection: DuckDBConnection,
  ) {
    this.batchMetrics = new BatchMetrics(options.metrics);
  }

  /** Opens DuckDB and binds every view's SQL (a ConfigError names the key at fault). */
  static async create(options: BatchLayerOptions): Promise<BatchLayer> {
    const duckdb = options.duckdb ?? (await DuckDBInstance.create(':memory:'));
    const connection = await duckdb.connect();
    try {
      await bindViews(options.loaded, connection);
    } catch (error) {
      connection.closeSync();
      if (!options.duckdb) duckdb.closeSync();
      throw error;
    }
    return new BatchLayer(options, duckdb, !options.duckdb, connection);
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
      ...(published
        ? {
            published: {
              version: published.version,
              cuts: published.cuts,
              eventsRead: published.eventsRead,
              finishedAt: published.finishedAt,
              durationMs: published.durationMs,
              producedBy: published.producedBy,
            },
          }
        : {}),
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
        run: () => this.runOnce(leadership),
        logger: this.options.logger,
        metrics: this.batchMetrics,
        onOutcome: (outcome) => this.record(outcome),
      });
      this.scheduler = scheduler;
      scheduler.start();
      const stopServing = this.options.runRequests?.serve(() => scheduler.runNow());
      this.stopServing = stopServing ?? (() => undefined);
      this.options.logger.info({ memberId: this.memberId, schedule: this.schedule }, 'batch master: schedule started');
    });
  }

  private onNotLeader(reason: string): void {
    this.batchMetrics.isMaster.set(0);
    const scheduler = this.scheduler;
    this.scheduler = undefined;
    this.stopServing();
    this.stopServing = () => undefined;
    if (!scheduler) return;
    this.options.logger.info({ memberId: this.memberId, reason }, 'no longer batch master: schedule stopped');
    const previous = this.stopping;
    this.stopping = previous.then(() => scheduler.stop());
  }

  /** One batch run for `leadership`'s term: recompute, publish (fenced), prune. */
  private async runOnce(leadership: Leadership): Promise<number> {
    const { layout, loaded, manifestStore, logger } = this.options;
    const interrupt = () => this.connection.interrupt();
    leadership.signal.addEventListener('abort', interrupt);
    try {
      leadership.signal.throwIfAborted();
      const previous = await manifestStore.current();
      const version = await nextVersion(layout, previous?.version);
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
      return version;
    } catch (error) {
      // Whatever failed after the term ended failed because it ended (interrupted query, fence).
      if (leadership.signal.aborted) throw new BatchRunAborted(leadership.signal.reason);
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
