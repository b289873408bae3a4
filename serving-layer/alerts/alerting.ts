import { hostname } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { ZkLeaderElection } from '../../core/coordination/leader-election.ts';
import type { LeaderElection } from '../../core/coordination/leadership.ts';
import { StandaloneLeaderElection } from '../../core/coordination/standalone-leader-election.ts';
import type { ZkSession } from '../../core/coordination/zk-session.ts';
import { holdsViewAsDefined, type BatchManifest } from '../../core/batch/batch-manifest.ts';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { AlertEvaluator, type EvaluationReport } from './alert-evaluator.ts';
import { AlertMetrics } from './alert-metrics.ts';
import { resolveAlertRules, unusedSketchMeasures, type AlertRule } from './alert-rule.ts';
import { sinkId, type AlertSink } from './alert-sink.ts';
import { AlertStore, type DuckDBConnector } from './alert-store.ts';
import { AlertWindowCache } from './alert-window-cache.ts';
import { alertsResponse, type AlertsQuery, type AlertsResponse } from './alerts-api.ts';
import type { BackoffOptions } from './backoff.ts';
import { createSink } from './create-sink.ts';
import { ZkDeliveryWatermarks } from './delivery-watermarks.ts';
import { NotificationOutbox, type SinkRoute } from './notification-outbox.ts';

export interface AlertingOptions {
  readonly loaded: LoadedConfig;
  /** The serving database holding batch__<view> and realtime__<view>. */
  readonly database: DuckDBConnector;
  /** `storage.dir`: the store is `<dir>/alerts/alerts.duckdb`; ':memory:' keeps it in memory (tests). */
  readonly storageDir: string;
  /**
   * Cluster mode: the process's ZooKeeper session and root; the serving nodes elect one notifier
   * under `<root>/alerts/notifier` and share delivery positions under `<root>/alerts/delivered`.
   * Without it, this process delivers.
   */
  readonly zookeeper?: { readonly session: ZkSession; readonly root: string };
  /** For Kafka sinks. */
  readonly kafka?: Kafka;
  readonly logger: Logger;
  readonly metrics?: Registry;
  /** Redelivery backoff (default 200 ms doubling to 10 s). */
  readonly backoff?: BackoffOptions;
  /** See AlertEvaluatorOptions.idleMs. */
  readonly idleMs?: number;
  readonly takeoverSkewMs?: number;
  /** How long `alert_history` keeps records (default: `serving.alertHistoryRetention`). */
  readonly historyRetentionMs?: number;
  /** How often old records are pruned (default hourly; the first pruning runs a minute after start). */
  readonly pruneEveryMs?: number;
  /** Names this process in the election (default host:pid). */
  readonly memberId?: string;
  /** Sinks to use instead of those the config describes, by sink id (tests, benches). */
  readonly sinkOverrides?: ReadonlyMap<string, AlertSink>;
}

/**
 * Alerting in one serving process: evaluation after each micro-batch (every node), the durable
 * store and `alert_history`, and notification delivery (the elected notifier only).
 *
 *   const alerting = await Alerting.start({ loaded, database, storageDir, zookeeper, kafka, logger, metrics });
 *   // in the speed layer's micro-batch transaction, after realtime rows are written:
 *   speed.addListener(alerting.realtimeListener());      // fold, evaluate after each micro-batch
 *   const stopClock = alerting.startClock(1_000);         // `for`, quiet streams, reminders
 *   app.get('/v1/alerts', (req) => alerting.api(req.query));
 *
 * Without `afterMicroBatch`, evaluation reads the view's batch and realtime tables directly:
 * correct, but its cost grows with the realtime rows in the window rather than with instances.
 */
export class Alerting {
  private lastRequestedMs = 0;
  /** The batch version whose handoff committed last (see `realtimeListener`). */
  private appliedManifest: BatchManifest | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<number> | undefined;

  private constructor(
    readonly store: AlertStore,
    readonly evaluator: AlertEvaluator,
    readonly outbox: NotificationOutbox,
    private readonly election: LeaderElection,
    private readonly windowCaches: ReadonlyMap<string, AlertWindowCache>,
    private readonly logger: Logger,
    private readonly historyRetentionMs: number,
  ) {}

  static async start(options: AlertingOptions): Promise<Alerting> {
    const { loaded, logger } = options;
    const metrics = options.metrics ? new AlertMetrics(options.metrics) : undefined;
    const rules = resolveAlertRules(loaded);
    const routes = sinkRoutes(loaded, options);
    const file = options.storageDir === ':memory:' ? ':memory:' : join(options.storageDir, 'alerts', 'alerts.duckdb');
    const store = await AlertStore.open(options.database, { file });
    const zookeeper = options.zookeeper;
    const watermarks = zookeeper ? new ZkDeliveryWatermarks(() => zookeeper.session.client, ZkDeliveryWatermarks.pathFor(zookeeper.root)) : store;
    const outbox = new NotificationOutbox({
      store,
      routes,
      watermarks,
      logger,
      ...(options.backoff ? { backoff: options.backoff } : {}),
      ...(options.takeoverSkewMs !== undefined ? { takeoverSkewMs: options.takeoverSkewMs } : {}),
      ...(metrics ? { metrics } : {}),
    });
    const windowCaches = windowCachesFor(rules);
    let evaluator: AlertEvaluator | undefined;
    try {
      evaluator = await AlertEvaluator.create({
        database: options.database,
        rules,
        store,
        windowCaches,
        onRecords: (records) => outbox.offer(records),
        logger,
        ...(options.idleMs !== undefined ? { idleMs: options.idleMs } : {}),
        ...(metrics ? { metrics } : {}),
      });
      const election = notifierElection(options);
      election.addListener({
        isLeader: () => void outbox.setOwner(true),
        notLeader: () => void outbox.setOwner(false),
      });
      await election.start();
      const alerting = new Alerting(store, evaluator, outbox, election, windowCaches, logger, options.historyRetentionMs ?? loaded.config.serving.alertHistoryRetention);
      alerting.startPruning(options.pruneEveryMs ?? 3_600_000);
      return alerting;
    } catch (error) {
      await outbox.close();
      await evaluator?.close();
      await store.close();
      throw error;
    }
  }

  /**
   * Folds a micro-batch into the alert window caches. Call it in the speed layer's serialised
   * commit path for every micro-batch, on the speed layer's connection (where `events`, the
   * relation of its decoded events, is visible): inside the micro-batch's transaction after its
   * realtime rows are written (`{ inTransaction: true }`, preferred), or right after the commit.
   */
  async afterMicroBatch(connection: DuckDBConnection, events: string | undefined, options: { readonly inTransaction?: boolean } = {}): Promise<void> {
    for (const cache of this.windowCaches.values()) await cache.afterMicroBatch(connection, events, options);
  }

  /** Rebuilds the window caches at the next micro-batch (e.g. after a batch swap that changed a view). */
  markWindowsStale(): void {
    for (const cache of this.windowCaches.values()) cache.markStale();
  }

  /** Evaluates every rule; call after each micro-batch has been applied to realtime__<view>. */
  evaluate(nowMs?: number): Promise<EvaluationReport> {
    this.lastRequestedMs = Date.now();
    return this.evaluator.evaluate(nowMs);
  }

  /**
   * Starts an evaluation without waiting for it (errors are logged). Requests made while one runs
   * coalesce into the single evaluation that follows it, so a caller on the ingestion path never
   * waits for evaluation, and micro-batches faster than evaluations build no queue.
   */
  evaluateSoon(): void {
    this.evaluate().catch((error: unknown) => this.logger.warn({ err: error }, 'alert evaluation failed'));
  }

  /**
   * What the speed layer calls at its commit points (its RealtimeListener): folds each micro-batch
   * into the window caches inside its transaction, starts an evaluation after it committed
   * (without making the speed layer wait), and rebuilds the caches after a batch handoff.
   */
  realtimeListener(): {
    microBatchInTransaction(connection: DuckDBConnection, events: string | undefined): Promise<void>;
    microBatchCommitted(connection: DuckDBConnection): Promise<void>;
    batchAppliedInTransaction(connection: DuckDBConnection, manifest: BatchManifest): Promise<void>;
    batchAppliedCommitted(manifest: BatchManifest): void;
  } {
    return {
      microBatchInTransaction: async (connection, events) => {
        const startedMs = performance.now();
        await this.afterMicroBatch(connection, events, { inTransaction: true });
        this.logger.debug({ foldMs: Math.round(performance.now() - startedMs) }, 'micro-batch folded into the alert windows');
      },
      microBatchCommitted: async () => {
        for (const cache of this.windowCaches.values()) cache.committed();
        this.evaluateSoon();
      },
      // A handoff moves state from realtime to batch: the merged windows stay what they were,
      // unless a view's batch state is (or was) left out for a definition that differs from this
      // node's (the batch handoff stages no batch rows then). Only that costs a rebuild, which would
      // otherwise hold the speed layer up at every batch version.
      batchAppliedInTransaction: async (_connection, manifest) => {
        if (!this.definitionsMatch(manifest) || (this.appliedManifest && !this.definitionsMatch(this.appliedManifest))) this.markWindowsStale();
      },
      batchAppliedCommitted: (manifest) => {
        this.appliedManifest = manifest;
      },
    };
  }

  /** The window cache of a windowed view with rules (tests, diagnostics). */
  windowCache(view: string): AlertWindowCache | undefined {
    return this.windowCaches.get(view);
  }

  /** True when every cached view's batch state in `manifest` was computed from this node's definition. */
  private definitionsMatch(manifest: BatchManifest): boolean {
    for (const cache of this.windowCaches.values()) {
      if (!holdsViewAsDefined(manifest, cache.view.definition.name, cache.view.definitionHash)) return false;
    }
    return true;
  }

  /**
   * Evaluates on the clock for what needs no data: `for` durations running out, instances
   * resolving when their stream goes quiet, reminders. Skips a tick when a micro-batch requested
   * an evaluation within the last `intervalMs`. Returns the stop function.
   */
  startClock(intervalMs: number): () => void {
    const timer = setInterval(() => {
      if (Date.now() - this.lastRequestedMs >= intervalMs) this.evaluateSoon();
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Deletes `alert_history` records older than the retention, keeping what a sink still waits for
   * and the newest record of every pending or firing instance. Returns the number deleted.
   */
  pruneHistory(nowMs: number = Date.now()): Promise<number> {
    this.pruning ??= (async () => {
      try {
        const keepNotificationsAfterSeq = await this.outbox.undeliveredAfterSeq();
        const deleted = await this.store.prune({ recordedBeforeMs: nowMs - this.historyRetentionMs, keepNotificationsAfterSeq });
        if (deleted > 0) this.logger.info({ deleted, retentionMs: this.historyRetentionMs }, 'pruned old alert history');
        return deleted;
      } finally {
        this.pruning = undefined;
      }
    })();
    return this.pruning;
  }

  /** Prunes a minute after start (not competing with it), then every `everyMs`. */
  private startPruning(everyMs: number): void {
    const prune = () => void this.pruneHistory().catch((error: unknown) => this.logger.warn({ err: error }, 'pruning alert history failed; retrying later'));
    this.pruneTimer = setTimeout(() => {
      prune();
      this.pruneTimer = setInterval(prune, everyMs);
      this.pruneTimer.unref();
    }, Math.min(everyMs, 60_000));
    this.pruneTimer.unref();
  }

  /** The body of `GET /v1/alerts` (query: `alert`, `state`). */
  api(query: AlertsQuery = {}): Promise<AlertsResponse> {
    return alertsResponse(this.evaluator, this.outbox, query);
  }

  /** True while this process delivers notifications. */
  get isNotifier(): boolean {
    return this.outbox.isOwner;
  }

  /** Stops delivery first (writing the last positions), then withdraws, so a successor resumes exactly. */
  async close(): Promise<void> {
    clearTimeout(this.pruneTimer);
    clearInterval(this.pruneTimer);
    // Ignored here: the pruning's failure went to its caller (the timer's `prune` logs it); close only waits for it to end.
    await this.pruning?.catch(() => undefined);
    await this.outbox.setOwner(false);
    await this.election.close();
    await this.outbox.close();
    await this.evaluator.close();
    await this.store.close();
  }
}

/**
 * Who delivers: one serving node of the cluster, elected under `<root>/alerts/notifier` (not the
 * batch master: that node may run no serving role, and so no evaluation); the process itself on a
 * single node.
 */
function notifierElection(options: AlertingOptions): LeaderElection {
  const memberId = options.memberId ?? `${hostname()}:${process.pid}`;
  const zookeeper = options.zookeeper;
  if (!zookeeper) return new StandaloneLeaderElection(memberId);
  const path = `${zookeeper.root.replace(/\/$/, '')}/alerts/notifier`;
  return new ZkLeaderElection({ session: zookeeper.session, path, memberId, leaderName: 'alert notifier', logger: options.logger.child({ role: 'alert-notifier' }) });
}

/** One sink per distinct `notify` entry, shared by the alerts that list it. */
function sinkRoutes(loaded: LoadedConfig, options: AlertingOptions): SinkRoute[] {
  const routes = new Map<string, { sink: AlertSink; alerts: string[] }>();
  for (const [name, alert] of Object.entries(loaded.config.alerts)) {
    alert.notify.forEach((config, i) => {
      if ('log' in config && !config.log) return;
      const id = sinkId(config);
      const route = routes.get(id);
      if (route) {
        if (!route.alerts.includes(name)) route.alerts.push(name);
        return;
      }
      const sink = options.sinkOverrides?.get(id) ?? createSink(config, { logger: options.logger, ...(options.kafka ? { kafka: options.kafka } : {}) }, `alerts.${name}.notify.${i}`);
      routes.set(id, { sink, alerts: [name] });
    });
  }
  return [...routes.values()];
}

/** One cache per windowed view with rules, keeping the longest window (plus a bucket) of buckets. */
function windowCachesFor(rules: readonly AlertRule[]): Map<string, AlertWindowCache> {
  const caches = new Map<string, AlertWindowCache>();
  for (const rule of rules) {
    if (rule.bucketMs === null || rule.windowMs === null) continue;
    const name = rule.view.definition.name;
    const longest = Math.max(rule.windowMs, ...rules.filter((r) => r.view.definition.name === name).map((r) => r.windowMs ?? 0));
    if (!caches.has(name)) caches.set(name, new AlertWindowCache(rule.view, longest + rule.bucketMs, { unusedMeasures: unusedSketchMeasures(rule.view, rules) }));
  }
  return caches;
}
