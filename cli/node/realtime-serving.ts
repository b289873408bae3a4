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
  ) {}

  static async start(options: RealtimeServingOptions): Promise<RealtimeServing> {
    const { loaded, layout, source, logger } = options;
    const database = await ServingDatabase.create(loaded);
    const manifest = await startupCall(() => options.manifestStore.current());
    const speed = await SpeedLayer.create({ loaded, source, instance: database.instance, ...(manifest ? { manifest } : {}), metrics: options.metrics, logger });
    // First listener: the views are up to date before anything else runs at a commit point.
    speed.addListener(await MaterializedViews.create(database.adminConnection, database.bound));
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
    const handoff = new BatchHandoff({ database, realtime: speed, masterViews, storageDir: layout.rootDir, logger });
    const node = new RealtimeServing(options, database, speed, handoff, masterViews, alerting);
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
