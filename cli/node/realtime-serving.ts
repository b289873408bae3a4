import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { BatchManifestStore } from '../../core/coordination/batch-manifest-store.ts';
import type { Logger } from '../../core/observability/logger.ts';
import type { RecordSource } from '../../core/source/record-source.ts';
import type { StorageLayout } from '../../core/storage/storage-layout.ts';
import { BatchHandoff } from '../../serving-layer/engine/batch-handoff.ts';
import { MasterDatasetViews, type RejectedCounts } from '../../serving-layer/engine/master-dataset-views.ts';
import { registerRejectedGauge } from '../../serving-layer/engine/rejected-gauge.ts';
import { MaterializedViews } from '../../serving-layer/engine/materialized-views.ts';
import { LiveViews, type ViewsChange } from '../../serving-layer/engine/live-views.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { lockDownDatabase } from '../../serving-layer/query/lock-down-database.ts';
import { REJECTED_NOT_KEPT_TABLE, REJECTED_REALTIME_TABLE, SpeedLayer } from '../../speed-layer/index.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import type { ZkSession } from '../../core/coordination/zk-session.ts';
import type { Kafka } from 'kafkajs';
import { startupCall } from './coordination.ts';

export interface RealtimeServingOptions {
  readonly loaded: LoadedConfig;
  readonly layout: StorageLayout;
  /** This node's own directory (alert store and outbox, DuckDB temp files): never shared. */
  readonly localDir: string;
  readonly source: RecordSource;
  readonly manifestStore: BatchManifestStore;
  readonly metrics: Registry;
  readonly logger: Logger;
  /** How often `events`/`rejected` pick up newly archived files. */
  readonly filesRefreshMs?: number;
  readonly memberId: string;
  /** Cluster mode: the session and root the alert notifier is elected under. */
  readonly zookeeper?: { readonly session: ZkSession; readonly root: string };
  /** For alert rules that notify a Kafka topic. */
  readonly kafka?: Kafka;
  /** The definitions version `loaded` holds. */
  readonly definitionsVersion?: number;
}

/**
 * The speed layer and the serving database of one process, kept in step with the published
 * batch versions by the batch handoff (serving-layer/engine/batch-handoff.ts).
 */
export class RealtimeServing {
  private stopWatching: () => void = () => undefined;
  private filesTimer: NodeJS.Timeout | undefined;
  private stopAlertClock: () => void = () => undefined;

  private constructor(
    private readonly options: RealtimeServingOptions,
    readonly database: ServingDatabase,
    readonly speed: SpeedLayer,
    private readonly handoff: BatchHandoff,
    private readonly masterViews: MasterDatasetViews,
    readonly alerting: Alerting,
    readonly liveViews: LiveViews,
  ) {}

  static async start(options: RealtimeServingOptions): Promise<RealtimeServing> {
    const { loaded, layout, source, logger } = options;
    const database = await ServingDatabase.create(loaded);
    const manifest = await startupCall(() => options.manifestStore.current());
    const speed = await SpeedLayer.create({ loaded, source, instance: database.instance, ...(manifest ? { manifest } : {}), metrics: options.metrics, logger });
    // First listener: the views are up to date before anything else runs at a commit point.
    const materialized = await MaterializedViews.create(database.adminConnection, database.bound);
    speed.addListener(materialized);
    const liveViews = new LiveViews({ database, realtime: speed, materialized, storageDir: layout.rootDir, eventsRelation: 'events', logger }, loaded, options.definitionsVersion ?? 0);
    const masterViews = new MasterDatasetViews({
      layout, topic: source.topic, schema: loaded.schema, realtimeRejectedTable: REJECTED_REALTIME_TABLE, realtimeNotKeptTable: REJECTED_NOT_KEPT_TABLE,
      eventsTail: speed.eventsTail,
    });
    // Alerting attaches its own DuckDB file to the database: before the lockdown.
    const alerting = await Alerting.start({
      loaded, database, storageDir: options.localDir, logger, metrics: options.metrics, memberId: options.memberId,
      ...(options.zookeeper ? { zookeeper: options.zookeeper } : {}),
      ...(options.kafka ? { kafka: options.kafka } : {}),
    });
    // Alert rules follow the served views: a rule on a view still backfilling waits for it.
    liveViews.onServedChange(async (connection, served) => void (await alerting.applyDefinitions(connection, served)));
    const handoff = new BatchHandoff({ database, realtime: speed, masterViews, storageDir: layout.rootDir, logger, liveViews });
    const node = new RealtimeServing(options, database, speed, handoff, masterViews, alerting, liveViews);
    registerRejectedGauge(options.metrics, () => node.rejectedCounts());
    // Alert windows fold each micro-batch in its transaction; evaluation follows each commit
    // without holding the speed layer up (coalesced while one runs).
    speed.addListener(alerting.realtimeListener());
    masterViews.committed(await masterViews.refresh(database.adminConnection, manifest));
    // Users may read the project's own Parquet (through `events`), nothing else on the machine.
    await lockDownDatabase(database.adminConnection, {
      allowedDirectories: [layout.masterDir(source.topic), layout.rejectedDir(source.topic), layout.batchDir()],
      memoryLimit: loaded.config.serving.memoryLimit,
      tempDirectory: join(options.localDir, 'duckdb-tmp'),
    });
    await liveViews.startWith(manifest);
    if (manifest) await handoff.apply(manifest);
    await speed.start();
    node.stopWatching = handoff.follow(options.manifestStore);
    node.filesTimer = setInterval(() => void handoff.refreshFiles(), options.filesRefreshMs ?? 2_000);
    node.filesTimer.unref();
    // Only what needs the clock with no data (`for`, quiet streams, reminders) waits for a tick.
    node.stopAlertClock = alerting.startClock(Math.max(loaded.config.speed.interval, 1_000));
    return node;
  }

  /** The batch version merged into the views now. */
  get appliedManifest(): BatchManifest | undefined {
    return this.handoff.appliedManifest;
  }

  /**
   * Runs definitions `loaded` (version `version`) from now on, without a restart (LiveViews), in
   * the handoff's queue so that no batch version is applied meanwhile; then applies the newest
   * published version if it waited for these definitions. Throws if nothing could change (retry).
   * `fillsBuilt` is called once the new views' fills are built (LiveViews.apply).
   */
  async applyDefinitions(loaded: LoadedConfig, version: number, fillsBuilt?: () => void): Promise<ViewsChange> {
    const change = await this.handoff.exclusive(() => this.liveViews.apply(loaded, version, this.handoff.appliedManifest, fillsBuilt));
    void this.handoff.retryLatest();
    this.alerting.evaluateSoon();
    return change;
  }

  get lastError(): string | undefined {
    return this.handoff.lastError;
  }

  /** The rejected records the `rejected` table stands for, counted in one snapshot with it. */
  async rejectedCounts(): Promise<RejectedCounts> {
    const connection = await this.database.connect();
    try {
      return await this.masterViews.countRejected(connection);
    } finally {
      connection.closeSync();
    }
  }

  async stop(): Promise<void> {
    this.stopWatching();
    clearInterval(this.filesTimer);
    this.stopAlertClock();
    await this.handoff.settled();
    await this.speed.stop();
    await this.alerting.close();
    this.database.close();
  }
}
