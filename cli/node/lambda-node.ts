import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { nodeIdSchema } from '../../core/config/config-schema.ts';
import { ConfigError } from '../../core/errors/index.ts';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { createMetricsRegistry } from '../../core/observability/metrics.ts';
import type { LocalLog } from '../../core/source/local-log.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { Archiver } from '../../batch-layer/archiver.ts';
import { BatchLayer } from '../../batch-layer/batch-layer.ts';
import { consoleAssets } from '../../serving-layer/console/console-assets.ts';
import type { Role } from '../../core/node/role.ts';
import type { HealthInfo } from '../../serving-layer/http/api-types.ts';
import { createHttpServer, type HttpServer } from '../../serving-layer/http/http-server.ts';
import { createEventIngest } from '../../serving-layer/ingest/event-ingest.ts';
import { IngestRefusals } from '../../serving-layer/ingest/ingest-refusals.ts';
import { QueryRunner } from '../../serving-layer/query/query-runner.ts';
import { archiverGroupId, createCoordination, startupCall, type Coordination } from './coordination.ts';
import { adoptLegacyAlertStore } from './legacy-alert-store.ts';
import { adoptPublishedDefinitions, followDefinitions, type DefinitionsFollower } from './node-definitions.ts';
import { DefinitionsAdmin } from '../../core/definitions/definitions-admin.ts';
import { NodeStatus } from './node-status.ts';
import { backfillOf, backfillingViewIn, ViewBackfillingError } from './view-backfill.ts';
import { RealtimeServing } from './realtime-serving.ts';
import { openRecordSource } from './record-source.ts';

export const ALL_ROLES: readonly Role[] = ['speed', 'batch', 'serving', 'archiver'];

export interface LambdaNodeOptions {
  readonly loaded: LoadedConfig;
  readonly roles: readonly Role[];
  readonly logger: Logger;
  /** Overrides serving.port (the PORT environment variable). */
  readonly port?: number;
  /** Overrides node.id (`--node-id`). */
  readonly nodeId?: string;
}

/** node.id as given (`--node-id`, config, LAMBDA_NODE_ID), else the host name made a valid id. */
export function resolveNodeId(loaded: LoadedConfig, override?: string): string {
  const given = override ?? loaded.config.node.id ?? process.env.LAMBDA_NODE_ID;
  const id = given ?? (hostname().replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100) || 'node');
  const checked = nodeIdSchema.safeParse(id);
  if (!checked.success) throw new ConfigError([{ path: 'node.id', message: `"${id}" ${checked.error.issues[0]?.message ?? 'is not a valid node id'}` }]);
  return id;
}

/**
 * The directory of what this node owns alone (DESIGN.md, "A cluster of processes"):
 * `<storage.localDir>/<node id>`, where localDir defaults to `<storage.dir>/local` single-node
 * and `./lambda-local` in a cluster (never inside the shared directory).
 */
export function nodeLocalDir(loaded: LoadedConfig, nodeId: string): string {
  const { storage, zookeeper } = loaded.config;
  const base = storage.localDir ?? (zookeeper ? './lambda-local' : join(storage.dir, 'local'));
  return resolve(base, nodeId);
}

/**
 * One `lambda start` process: the roles it was given, wired together. Layers are started in
 * dependency order (coordination → archiver → batch → speed + serving → HTTP) and stopped in
 * reverse. The serving role needs the speed role: its views merge that process's realtime state.
 */
export class LambdaNode {
  /** What stop() undoes, in reverse order, each named for the log. */
  private readonly stops: { readonly step: string; readonly stop: () => Promise<void> }[] = [];
  /** The stop step in progress, for the log of a stop past its deadline. */
  private stopping: string | undefined;
  /** What must stop at once before a forced exit (see halt). */
  private readonly halts: (() => Promise<void>)[] = [];
  private http: HttpServer | undefined;
  private phase: HealthInfo['status'] = 'starting';
  localLog: LocalLog | undefined;

  private constructor(
    readonly options: LambdaNodeOptions,
    /** node.id: stable across restarts, unique among the live nodes (ZooKeeper checks). */
    readonly memberId: string,
  ) {}

  static async start(options: LambdaNodeOptions): Promise<LambdaNode> {
    const roles = new Set(options.roles);
    if (roles.has('serving') && !roles.has('speed')) {
      throw new Error('the serving role needs the speed role in the same process: its views merge that realtime state; add --roles speed,serving');
    }
    const node = new LambdaNode(options, resolveNodeId(options.loaded, options.nodeId));
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
    const { logger } = this.options;
    const fileConfig = this.options.loaded;
    // Views and alerts aside, the file is the config: they come from the published definitions.
    const { config } = fileConfig;
    const metrics = createMetricsRegistry();
    const layout = new StorageLayout(resolve(config.storage.dir));
    const localDir = nodeLocalDir(fileConfig, this.memberId);
    await mkdir(localDir, { recursive: true });
    const coordination: Coordination = await createCoordination(fileConfig, layout, this.memberId, logger);
    this.stops.push({ step: 'coordination (ZooKeeper session)', stop: () => coordination.close() });
    const { loaded, version: startVersion } = await adoptPublishedDefinitions(fileConfig, coordination.definitions, logger);
    let definitionsVersion = startVersion;
    let follower: DefinitionsFollower | undefined;
    const member = { id: this.memberId, roles: [...roles], url: null, host: hostname(), pid: process.pid, startedAtMs: Date.now(), definitionsVersion };
    // Claimed before any work is taken: a second node with this id stops here (not retriable);
    // a ZooKeeper slow to answer a starting node is waited for.
    await startupCall(() => coordination.members.register(member));
    await adoptLegacyAlertStore({ storageDir: layout.rootDir, localDir, cluster: coordination.mode !== 'single-node', logger });
    const { source, localLog, kafka } = await openRecordSource(loaded, layout, logger);
    this.localLog = localLog;
    if (localLog) this.stops.push({ step: 'local event log', stop: () => localLog.close() });

    const ownership = coordination.archiverOwnership(() => source.partitionCount());
    let archiver: Archiver | undefined;
    if (roles.has('archiver')) {
      archiver = await Archiver.create({
        source, layout, schema: loaded.schema, groupId: archiverGroupId(loaded, this.memberId), ownership, logger, metrics,
        flush: { intervalMs: config.batch.archiveFlushInterval },
      });
      await archiver.start();
      this.stops.push({ step: 'archiver', stop: () => archiver!.stop() });
      this.halts.push(() => archiver!.halt());
    }
    let batch: BatchLayer | undefined;
    if (roles.has('batch')) {
      batch = await BatchLayer.create({
        loaded, layout, election: coordination.election, manifestStore: coordination.manifestStore,
        runRequests: coordination.runRequests, logger, metrics, topic: source.topic, progressStore: coordination.batchProgress, definitionsVersion,
      });
      await batch.start();
      this.stops.push({ step: 'batch layer', stop: () => batch!.stop() });
    }
    let realtime: RealtimeServing | undefined;
    if (roles.has('speed')) {
      realtime = await RealtimeServing.start({
        loaded, layout, localDir, source, manifestStore: coordination.manifestStore, metrics, logger, memberId: this.memberId, definitionsVersion,
        ...(coordination.session && coordination.root ? { zookeeper: { session: coordination.session, root: coordination.root } } : {}),
        ...(kafka ? { kafka: kafka.client } : {}),
      });
      this.stops.push({ step: 'speed and serving layers', stop: () => realtime!.stop() });
    }
    const serving = roles.has('serving') && realtime ? realtime : undefined;
    const refusals = localLog && serving ? new IngestRefusals(metrics) : undefined;
    const status = new NodeStatus({ memberId: this.memberId, roles: [...roles], coordination, realtime, batch, archiver, ownership, loaded, logger, refusals, definitionsVersion: () => definitionsVersion });
    const runner = serving ? new QueryRunner(serving.database.instance, { timeoutMs: config.serving.queryTimeout, maxRows: config.serving.maxRows }) : undefined;
    // Every node answers health, status and metrics; SQL, views, alerts and the console need the serving role.
    this.http = createHttpServer({
      host: config.serving.host,
      port: this.options.port ?? config.serving.port,
      ...(config.serving.token ? { token: config.serving.token } : {}),
      ...(config.serving.adminToken ? { adminToken: config.serving.adminToken } : {}),
      definitions: new DefinitionsAdmin(coordination.definitions, loaded),
      logger,
      status: async () => status.status(),
      health: () => ({ status: this.phase, nodeId: this.memberId, roles: [...roles] }),
      metrics,
      ...(serving && runner
        ? {
            query: async (sql, options) => {
              // Lagging at the start or the end: the query's snapshot lies between the two.
              const laggingBefore = serving.speed.eventsTail.lagging();
              const result = await runner.run(sql, options).catch(async (error: unknown) => {
                // A view added but not exact yet is not in the database: say so, with its progress.
                const message = (error as Error).message;
                const pending = backfillingViewIn(message, (name) => serving.liveViews.pendingView(name));
                if (pending) throw new ViewBackfillingError(pending.name, backfillOf(pending, await status.backfillProgress()).progress);
                // Published a moment ago, not run here yet (the watch is on its way): backfilling too, from 0%.
                if (!backfillingViewIn(message, (name) => ({ name }))) throw error;
                const current = await coordination.definitions.current().catch(() => follower?.newest());
                const published = backfillingViewIn(message, (name) => (current?.definitions.views[name] && !serving.liveViews.servedViews().some((b) => b.view.definition.name === name) ? { name } : undefined));
                if (published) throw new ViewBackfillingError(published.name, 0);
                throw error;
              });
              return { ...result, eventsLagging: laggingBefore || serving.speed.eventsTail.lagging() };
            },
            views: async () => status.views(),
            viewsSettled: (version, timeoutMs, signal) => status.viewsSettled(version, timeoutMs, signal),
            alerts: async () => serving.alerting.api({}),
            console: consoleAssets,
          }
        : {}),
      ...(localLog && refusals ? { ingest: createEventIngest(localLog, loaded.schema, refusals) } : {}),
    });
    // Run in reverse: after the HTTP server, every Kafka consumer of the node stops at once (each
    // may wait out its time limit when the brokers are gone), before the layers' own stops.
    this.stops.push({ step: 'Kafka consumers', stop: async () => void (await Promise.all([archiver?.stopReading(), realtime?.speed.stopReading()])) });
    await this.http.start();
    this.stops.push({
      step: 'HTTP server',
      stop: async () => {
        await this.http!.stop();
        runner?.close();
      },
    });
    await startupCall(() => coordination.members.register({ ...member, url: this.url ?? null }));
    // Every newer definitions version runs here without a restart: the views and alert rules
    // follow (LiveViews, Alerting), the batch master backfills, and the member data says so.
    follower = followDefinitions({
      store: coordination.definitions,
      fileConfig,
      runningVersion: definitionsVersion,
      logger,
      run: async (next, version) => {
        // Exact in either order, as the fill and each handoff run one at a time in the handoff's
        // queue: a backfilled version handed over before the fill raises the cuts the fill starts
        // from, and the fill's views are promoted with that version's state (LiveViews.apply);
        // one handed over after it promotes them and drops their realtime blocks below its cuts
        // with the others'. On this node's cores, though, the backfill starts once the realtime
        // side has built its fills (the long part of its apply, tried or not): the two GROUP BYs
        // at once, each on every core, took longer than one after the other (an apply at rest,
        // `npm run bench -- definitions`: 0.90 s side by side, 0.82–0.88 s so). Both settle
        // before a retry, which runs both again: the half that succeeded finds nothing left to do.
        let fillsBuilt = () => {};
        const built = new Promise<void>((resolve) => (fillsBuilt = resolve));
        const outcomes = await Promise.allSettled([
          realtime?.applyDefinitions(next, version, fillsBuilt).finally(fillsBuilt),
          batch?.applyDefinitions(next, version, realtime ? built : undefined),
        ]);
        const failed = outcomes.find((outcome) => outcome.status === 'rejected');
        if (failed) throw failed.reason;
        definitionsVersion = version;
        await coordination.members
          .register({ ...member, url: this.url ?? null, definitionsVersion })
          .catch((error: unknown) => logger.warn({ err: error }, 'cannot publish the definitions version this node runs; the next registration will'));
      },
    });
    this.stops.push({ step: 'definitions watch', stop: async () => follower?.stop() });
    this.phase = 'ok';
    logger.info({ memberId: this.memberId, roles: [...roles], url: this.url, localDir, mode: coordination.mode }, 'lambda node started');
  }

  /**
   * Before a forced exit (the stop past node.shutdownTimeout, or failed): stops what must not be
   * torn down mid-way, the archiver's sink workers and their DuckDB statements.
   */
  async halt(): Promise<void> {
    const halted = await Promise.allSettled(this.halts.map((halt) => halt()));
    for (const outcome of halted) if (outcome.status === 'rejected') this.options.logger.warn({ err: outcome.reason }, 'halting before the exit failed');
  }

  /** The step stop() is in (e.g. 'archiver'), undefined when not stopping. */
  get stoppingStep(): string | undefined {
    return this.stopping;
  }

  async stop(): Promise<void> {
    this.phase = 'stopping';
    for (const { step, stop } of this.stops.splice(0).reverse()) {
      const startedAt = Date.now();
      this.stopping = step;
      try {
        await stop();
        this.options.logger.info({ step, tookMs: Date.now() - startedAt }, `stopped the ${step}`);
      } catch (error) {
        this.options.logger.warn({ err: error, step, tookMs: Date.now() - startedAt }, 'error while stopping');
      }
    }
    this.stopping = undefined;
  }
}
