import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { createMetricsRegistry } from '../../core/observability/metrics.ts';
import type { LocalLog } from '../../core/source/local-log.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { Archiver } from '../../batch-layer/archiver.ts';
import { BatchLayer } from '../../batch-layer/batch-layer.ts';
import { consoleAssets } from '../../serving-layer/console/console-assets.ts';
import type { Role } from '../../serving-layer/http/api-types.ts';
import { createHttpServer, type HttpServer } from '../../serving-layer/http/http-server.ts';
import { createEventIngest } from '../../serving-layer/ingest/event-ingest.ts';
import { QueryRunner } from '../../serving-layer/query/query-runner.ts';
import { archiverGroupId, createCoordination, type Coordination } from './coordination.ts';
import { NodeStatus } from './node-status.ts';
import { RealtimeServing } from './realtime-serving.ts';
import { openRecordSource } from './record-source.ts';

export const ALL_ROLES: readonly Role[] = ['speed', 'batch', 'serving', 'archiver'];

export interface LambdaNodeOptions {
  readonly loaded: LoadedConfig;
  readonly roles: readonly Role[];
  readonly logger: Logger;
  /** Overrides serving.port (the PORT environment variable). */
  readonly port?: number;
}

/**
 * One `lambda start` process: the roles it was given, wired together. Layers are started in
 * dependency order (coordination → archiver → batch → speed + serving → HTTP) and stopped in
 * reverse. The serving role needs the speed role: its views merge that process's realtime state.
 */
export class LambdaNode {
  private readonly stops: (() => Promise<void>)[] = [];
  private http: HttpServer | undefined;
  localLog: LocalLog | undefined;

  private constructor(
    readonly options: LambdaNodeOptions,
    readonly memberId: string,
  ) {}

  static async start(options: LambdaNodeOptions): Promise<LambdaNode> {
    const roles = new Set(options.roles);
    if (roles.has('serving') && !roles.has('speed')) {
      throw new Error('the serving role needs the speed role in the same process: its views merge that realtime state; add --roles speed,serving');
    }
    const memberId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const node = new LambdaNode(options, memberId);
    try {
      await node.startRoles(roles);
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  /** The HTTP address, when serving. */
  get url(): string | undefined {
    return this.http?.address?.url;
  }

  private async startRoles(roles: Set<Role>): Promise<void> {
    const { loaded, logger } = this.options;
    const { config } = loaded;
    const metrics = createMetricsRegistry();
    const layout = new StorageLayout(resolve(config.storage.dir));
    const coordination: Coordination = await createCoordination(loaded, layout, this.memberId, logger);
    this.stops.push(() => coordination.close());
    const { source, localLog, kafka } = await openRecordSource(loaded, layout, logger);
    this.localLog = localLog;
    if (localLog) this.stops.push(() => localLog.close());

    let archiver: Archiver | undefined;
    if (roles.has('archiver')) {
      archiver = await Archiver.create({ source, layout, schema: loaded.schema, groupId: archiverGroupId(loaded), logger, metrics });
      await archiver.start();
      this.stops.push(() => archiver!.stop());
    }
    let batch: BatchLayer | undefined;
    if (roles.has('batch')) {
      batch = await BatchLayer.create({
        loaded, layout, election: coordination.election, manifestStore: coordination.manifestStore,
        runRequests: coordination.runRequests, logger, metrics, topic: source.topic,
      });
      await batch.start();
      this.stops.push(() => batch!.stop());
    }
    let realtime: RealtimeServing | undefined;
    if (roles.has('speed')) {
      realtime = await RealtimeServing.start({
        loaded, layout, source, manifestStore: coordination.manifestStore, metrics, logger, memberId: this.memberId,
        ...(coordination.session && coordination.root ? { zookeeper: { session: coordination.session, root: coordination.root } } : {}),
        ...(kafka ? { kafka: kafka.client } : {}),
      });
      this.stops.push(() => realtime!.stop());
    }
    const status = new NodeStatus({ memberId: this.memberId, roles: [...roles], coordination, realtime, batch, archiver, loaded });
    if (roles.has('serving') && realtime) {
      const runner = new QueryRunner(realtime.database.instance, { timeoutMs: config.serving.queryTimeout, maxRows: config.serving.maxRows });
      this.http = createHttpServer({
        host: config.serving.host,
        port: this.options.port ?? config.serving.port,
        ...(config.serving.token ? { token: config.serving.token } : {}),
        logger,
        query: (sql, options) => runner.run(sql, options),
        views: async () => status.views(),
        status: async () => status.status(),
        alerts: async () => realtime!.alerting.api({}),
        metrics,
        ...(localLog ? { ingest: createEventIngest(localLog, loaded.schema) } : {}),
        console: consoleAssets,
      });
      await this.http.start();
      this.stops.push(async () => {
        await this.http!.stop();
        runner.close();
      });
    }
    await coordination.members.register({
      id: this.memberId, roles: [...roles], url: this.url ?? null, host: hostname(), pid: process.pid, startedAtMs: Date.now(),
    });
    logger.info({ memberId: this.memberId, roles: [...roles], url: this.url, mode: coordination.mode }, 'lambda node started');
  }

  async stop(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse()) {
      try {
        await stop();
      } catch (error) {
        this.options.logger.warn({ err: error }, 'error while stopping');
      }
    }
  }
}
