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
import { SerialLock } from '../../core/duckdb/serial-lock.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { AlertEvaluator, type EvaluationReport } from './alert-evaluator.ts';
import { AlertMetrics } from './alert-metrics.ts';
import { resolveServedRules, type AlertRule, type WaitingRule } from './alert-rule.ts';
import { planRulesChange, type AlertRulesChange } from './alert-rules-change.ts';
import type { AlertSink } from './alert-sink.ts';
import { AlertStore, type DuckDBConnector } from './alert-store.ts';
import type { AlertWindowCache } from './alert-window-cache.ts';
import { alertsResponse, type AlertsQuery, type AlertsResponse, type UnboundRule } from './alerts-api.ts';
import type { BackoffOptions } from './backoff.ts';
import { CommitMarker } from './commit-marker.ts';
import { ZkDeliveryWatermarks } from './delivery-watermarks.ts';
import { NotificationOutbox, type PlannedRoute } from './notification-outbox.ts';
import { plannedRoutes } from './sink-routes.ts';
import { windowCachesFor } from './window-caches-for.ts';

export type { AlertRulesChange } from './alert-rules-change.ts';

/** A new rule set staged in a transaction, waiting to be known committed (see CommitMarker). */
interface StagedRules {
  readonly token: number;
  readonly rules: readonly AlertRule[];
  readonly waiting: readonly WaitingRule[];
  readonly removed: ReadonlySet<string>;
  readonly routes: readonly PlannedRoute[];
  /** The window caches before, put back if the transaction rolled back. */
  readonly previousCaches: ReadonlyMap<string, AlertWindowCache>;
  readonly change: AlertRulesChange;
}

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
  /** The rule set the node runs, or will once the transaction that staged it committed. */
  private target: { readonly running: readonly AlertRule[]; readonly waiting: readonly WaitingRule[] };
  /** Rules whose view is backfilling, as evaluation has them (shown by the API). */
  private waitingRules: readonly WaitingRule[];
  private unboundRules: readonly UnboundRule[] = [];
  /** One query at a time on `markerReader` (evaluations and API calls overlap). */
  private readonly markerLock = new SerialLock();
  private staged: StagedRules | undefined;
  /** Rule sets known committed, taken up by the evaluator and outbox one after another. */
  private adopting: Promise<void> = Promise.resolve();
  /** The batch version whose handoff committed last (see `realtimeListener`). */
  private appliedManifest: BatchManifest | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private pruning: Promise<number> | undefined;

  private constructor(
    readonly store: AlertStore,
    readonly evaluator: AlertEvaluator,
    readonly outbox: NotificationOutbox,
    private readonly election: LeaderElection,
    /** Changed in place (the evaluator reads the same map) on the speed layer's serialised path. */
    private readonly windowCaches: Map<string, AlertWindowCache>,
    private readonly logger: Logger,
    private readonly historyRetentionMs: number,
    private readonly marker: CommitMarker,
    /** Reads the commit marker outside the speed layer's transactions. */
    private readonly markerReader: DuckDBConnection,
    private readonly options: AlertingOptions,
    initial: { readonly running: readonly AlertRule[]; readonly waiting: readonly WaitingRule[] },
  ) {
    this.target = initial;
    this.waitingRules = initial.waiting;
  }

  static async start(options: AlertingOptions): Promise<Alerting> {
    const { loaded, logger } = options;
    const metrics = options.metrics ? new AlertMetrics(options.metrics) : undefined;
    const { rules, waiting } = resolveServedRules(loaded);
    const routes = plannedRoutes(loaded.config.alerts, options).map((r) => ({ sink: r.createSink(), alerts: r.alerts }));
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
    const { caches: windowCaches } = windowCachesFor(rules);
    let evaluator: AlertEvaluator | undefined;
    const markerReader = await options.database.connect();
    try {
      const marker = await CommitMarker.create(markerReader, '__alert_rules_commit');
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
      const retentionMs = options.historyRetentionMs ?? loaded.config.serving.alertHistoryRetention;
      const alerting = new Alerting(store, evaluator, outbox, election, windowCaches, logger, retentionMs, marker, markerReader, options, { running: rules, waiting });
      if (waiting.length > 0) logger.info({ waiting: waiting.map((w) => w.name) }, 'alert rules wait for their views to be served');
      alerting.startPruning(options.pruneEveryMs ?? 3_600_000);
      return alerting;
    } catch (error) {
      await outbox.close();
      await evaluator?.close();
      await store.close();
      markerReader.closeSync();
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
    await this.settleStaged(connection, true);
    for (const cache of this.windowCaches.values()) await cache.afterMicroBatch(connection, events, options);
  }

  /** Rebuilds the window caches at the next micro-batch (e.g. after a batch swap that changed a view). */
  markWindowsStale(): void {
    for (const cache of this.windowCaches.values()) cache.markStale();
  }

  /**
   * Evaluates every rule; call after each micro-batch has been applied to realtime__<view>.
   * A rule set staged by `applyDefinitions` is taken up first once its transaction committed.
   */
  async evaluate(nowMs?: number): Promise<EvaluationReport> {
    this.lastRequestedMs = Date.now();
    await this.settleStaged(this.markerReader, false);
    await this.adopting;
    return this.evaluator.evaluate(nowMs);
  }

  /**
   * Follows a new definitions version: `served.views` are the views the serving database serves
   * now, `served.config.alerts` the rules. Call it on the speed layer's serialised write path,
   * inside its open transaction on `connection` (where `microBatchInTransaction` runs), whenever
   * the definitions change, and again whenever a changed or added view is swapped in (its
   * CompiledView then has another `definitionHash`).
   *
   * Inside the transaction it only stages: the window caches are replaced where the rules or the
   * view definitions need it (built from the view's state at the next micro-batch; a cache no rule
   * reads is dropped, in the transaction) and a commit marker is written. Once the marker shows
   * the transaction committed (checked at the next micro-batch, evaluation or call), the notify
   * routes and the evaluator follow (AlertEvaluator.replaceRules says what happens to each rule's
   * instances); if it rolled back, the caches are put back and nothing else changed.
   * A rule on a view not in `served.views` waits (listed by `/v1/alerts`), and starts as at process
   * start once a later call serves its view. Returns the change by rule name.
   */
  async applyDefinitions(connection: DuckDBConnection, served: Pick<LoadedConfig, 'config' | 'views'>): Promise<AlertRulesChange> {
    await this.settleStaged(connection, true);
    const next = resolveServedRules(served);
    const change = planRulesChange({ running: this.target.running, waiting: this.target.waiting }, { running: next.rules, waiting: next.waiting });
    const routes = plannedRoutes(served.config.alerts, this.options);
    const previousCaches = new Map(this.windowCaches);
    const { caches, dropped } = windowCachesFor(next.rules, this.windowCaches);
    for (const cache of dropped) await cache.drop(connection);
    const token = await this.marker.mark(connection);
    this.replaceCaches(caches);
    this.staged = { token, rules: next.rules, waiting: next.waiting, removed: new Set(change.removed), routes, previousCaches, change };
    this.target = { running: next.rules, waiting: next.waiting };
    this.logger.info({ ...change }, 'alert rules staged with the new definitions');
    return change;
  }

  /**
   * A staged rule set whose transaction committed is taken up; one whose transaction is known to
   * have ended uncommitted (`ended`: asked on the speed layer's path, after it) is undone.
   */
  private async settleStaged(connection: DuckDBConnection, ended: boolean): Promise<void> {
    const staged = this.staged;
    if (!staged) return;
    const committed = ended
      ? await this.marker.committed(connection, staged.token)
      : await this.markerLock.runExclusive(() => this.marker.committed(connection, staged.token));
    if (committed) {
      if (this.staged !== staged) return; // taken up meanwhile
      this.staged = undefined;
      this.adopt(staged);
    } else if (ended && this.staged === staged) {
      this.staged = undefined;
      this.replaceCaches(staged.previousCaches);
      this.target = { running: this.evaluator.rules, waiting: this.waitingRules };
      this.logger.warn({ ...staged.change }, 'the transaction that changed the alert rules rolled back; the rules stay as they were');
    }
  }

  /** The outbox, then the evaluator, follow `staged` (after the rule sets taken up before it). */
  private adopt(staged: StagedRules): void {
    this.adopting = this.adopting.then(async () => {
      try {
        await this.outbox.setRoutes(staged.routes, staged.removed);
        const { records, unbound } = await this.evaluator.replaceRules(staged.rules, staged.removed);
        this.waitingRules = staged.waiting;
        this.unboundRules = unbound;
        this.logger.info({ ...staged.change, ended: records.length }, 'alert rules follow the new definitions');
      } catch (error) {
        this.logger.error({ err: error }, 'alert rules could not follow the new definitions; the previous rules keep running');
      }
    });
  }

  private replaceCaches(caches: ReadonlyMap<string, AlertWindowCache>): void {
    this.windowCaches.clear();
    for (const [view, cache] of caches) this.windowCaches.set(view, cache);
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
      // No settling of staged rules here: the handoff transaction may itself have staged them (a
      // view definition swapped in, LiveViews), and its own marker row is visible inside it while
      // the evaluator's connection does not see its tables yet. They are settled after the commit.
      batchAppliedInTransaction: async (_connection, manifest) => {
        if (!this.definitionsMatch(manifest) || (this.appliedManifest && !this.definitionsMatch(this.appliedManifest))) this.markWindowsStale();
      },
      batchAppliedCommitted: (manifest) => {
        this.appliedManifest = manifest;
        if (this.staged) {
          void this.settleStaged(this.markerReader, false).then(() => this.evaluateSoon());
        }
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
  async api(query: AlertsQuery = {}): Promise<AlertsResponse> {
    await this.settleStaged(this.markerReader, false);
    await this.adopting;
    return alertsResponse(this.evaluator, this.outbox, query, { waiting: this.waitingRules, unbound: this.unboundRules });
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
    await this.adopting;
    await this.outbox.close();
    await this.evaluator.close();
    await this.store.close();
    this.markerReader.closeSync();
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
