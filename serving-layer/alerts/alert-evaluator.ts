import type { DuckDBConnection } from '@duckdb/node-api';
import { SerialLock } from '../../core/duckdb/serial-lock.ts';
import type { Logger } from '../../core/observability/logger.ts';
import type { CompiledView } from '../../core/views/view-compiler.ts';
import type { AlertMetrics } from './alert-metrics.ts';
import { allStatesSql, judgeSql, newestBucketSql, restrictedStatesSql, valuesSql, windowStatesSql } from './alert-query.ts';
import { notificationId, type AlertRecord, type NewAlertRecord } from './alert-record.ts';
import type { AlertRule } from './alert-rule.ts';
import { isSameRule, keysKeepMeaning } from './alert-rules-change.ts';
import { INACTIVE, isActive, stepAlert, type AlertStatus, type InstanceState, type Transition } from './alert-state.ts';
import type { AlertStore, DuckDBConnector } from './alert-store.ts';
import type { UnboundRule } from './alerts-api.ts';
import { bindAlertRule } from './bind-alert-rule.ts';
import { endInstances } from './end-instances.ts';
import type { AlertWindowCache } from './alert-window-cache.ts';
import { observeNewestBucket, slidingWindow, windowEndBucketStartMs, type EventClock, type EventWindow } from './event-clock.ts';
import { KeyTable } from './key-table.ts';

export interface AlertEvaluatorOptions {
  /** The serving database (batch__<view>, realtime__<view>); the evaluator opens its own connection. */
  readonly database: DuckDBConnector;
  readonly rules: readonly AlertRule[];
  readonly store: AlertStore;
  /** Per windowed view: its recent buckets kept merged (alert-window-cache.ts); read once ready. */
  readonly windowCaches?: ReadonlyMap<string, AlertWindowCache>;
  /** Receives the records of each evaluation once they are durable (the notification outbox). */
  readonly onRecords?: (records: readonly AlertRecord[]) => void;
  /** How long a view's newest bucket may stand still before windows follow the wall clock (default: one bucket). */
  readonly idleMs?: number;
  /** How long a resolved instance stays listed (default 1 h). */
  readonly resolvedRetentionMs?: number;
  readonly logger: Logger;
  readonly metrics?: AlertMetrics;
}

/** An instance that is not inactive, as of its last transition. */
export interface AlertInstance {
  readonly alert: string;
  readonly keyJson: string;
  readonly state: InstanceState;
  /** The value measures when it last changed state; null without data. */
  readonly valueJson: string | null;
  readonly window: EventWindow | null;
  readonly lastNotification: { readonly id: string; readonly state: AlertStatus; readonly reminder: boolean; readonly atMs: number } | null;
}

export interface EvaluationReport {
  readonly atMs: number;
  readonly durationMs: number;
  /** Transitions and reminders recorded by this evaluation. */
  readonly records: readonly AlertRecord[];
  /** Rules whose query failed (logged); their instances were left as they were. */
  readonly failedRules: readonly string[];
}

interface RuleRuntime {
  readonly rule: AlertRule;
  /** The keys of its pending and firing instances, for the judge query. */
  readonly active: KeyTable;
  /** The keys whose values a query wants. */
  readonly wanted: KeyTable;
  readonly dimTypes: readonly string[];
  /** Instances that are not inactive, by key JSON. */
  readonly instances: Map<string, AlertInstance>;
  /** The window of the last evaluation (null: running totals; undefined: none yet). */
  lastWindow: EventWindow | null | undefined;
  /**
   * What the last successful evaluation examined through the window cache: every instance over
   * `window`, with the cache's rows up to fold `fold`. While window and generation stay the same,
   * only the keys folded since, and the active ones, can change.
   */
  examined: Examined | undefined;
}

interface Examined {
  readonly window: EventWindow;
  readonly generation: number;
  readonly fold: number;
}

/** A window cache's state when an evaluation started. */
type CacheSnapshot = ReturnType<AlertWindowCache['snapshot']>;

interface Change {
  readonly runtime: RuleRuntime;
  readonly keyJson: string;
  readonly instance: AlertInstance | null;
}

interface Stepped {
  readonly keyJson: string;
  readonly hasData: boolean;
  readonly state: InstanceState;
  readonly transitions: readonly Transition<null>[];
  readonly previous: AlertInstance | undefined;
}

const DEFAULT_RESOLVED_RETENTION_MS = 3_600_000;
const NO_DATA = { conditionTrue: false, clearTrue: true, value: null } as const;

/**
 * Evaluates every alert rule over the merged batch ⊎ realtime state, after each micro-batch:
 * a judge query per rule (condition and clear of the instances that can change; while the window
 * stays put, only the keys folded into the window cache since the last evaluation and the active
 * instances are judged), the pure state machine per instance (alert-state.ts), and a values query
 * for the instances that changed. The window caches are compacted after an evaluation.
 * Transitions are appended to the store before the in-memory states move, so what is notified is
 * always what was recorded; then they go to the outbox, which never makes evaluation wait.
 * Instance states are restored from the store on start.
 */
export class AlertEvaluator {
  private readonly lock = new SerialLock();
  private closed = false;
  /** Per view name and definition hash (see `clockKey`). */
  private readonly clocks = new Map<string, EventClock>();
  private last: { atMs: number; durationMs: number } | null = null;
  private waiting: { nowMs: number; report: Promise<EvaluationReport> } | undefined;
  private runtimes: RuleRuntime[] = [];
  /** Numbers the key tables of the runtimes, which come and go with the rules. */
  private tableIds = 0;

  private constructor(
    private readonly options: AlertEvaluatorOptions,
    private readonly connection: DuckDBConnection,
  ) {}

  static async create(options: AlertEvaluatorOptions): Promise<AlertEvaluator> {
    const connection = await options.database.connect();
    try {
      const evaluator = new AlertEvaluator(options, connection);
      for (const rule of options.rules) evaluator.runtimes.push(await evaluator.createRuntime(rule));
      await evaluator.restore(evaluator.runtimes);
      return evaluator;
    } catch (error) {
      connection.closeSync();
      throw error;
    }
  }

  get rules(): readonly AlertRule[] {
    return this.runtimes.map((r) => r.rule);
  }

  /**
   * Evaluates `rules` from now on (a new definitions version), between two evaluations.
   * - A rule whose alert config and view definition are both the same (isSameRule) keeps its
   *   runtime untouched: instances, `for` timers, reminders, what it last examined.
   * - A changed rule starts over from its view's current state. Its instances whose keys keep
   *   their meaning (keysKeepMeaning) keep their state, so a firing one that still fires notifies
   *   nothing and one that no longer matches resolves at the next evaluation as usual; the
   *   others end now (endInstances, reason "rule changed: …").
   * - A rule not in `rules` and named in `removed` ends its instances (reason "rule removed");
   *   one not in `rules` but not removed (its view is backfilling) is only set aside, its
   *   instances left as recorded.
   * - A rule new here restores its instances from the store, as at start.
   * A rule that does not bind over its view is left out and reported in `unbound` (logged).
   * Returns the records appended (already handed to `onRecords`).
   */
  replaceRules(rules: readonly AlertRule[], removed: ReadonlySet<string>): Promise<{ records: AlertRecord[]; unbound: UnboundRule[] }> {
    return this.lock.runExclusive(async () => {
      const before = new Map(this.runtimes.map((r) => [r.rule.name, r]));
      const next: RuleRuntime[] = [];
      const restored: RuleRuntime[] = [];
      const ending: NewAlertRecord[] = [];
      const unbound: UnboundRule[] = [];
      const nowMs = Date.now();
      for (const rule of rules) {
        const old = before.get(rule.name);
        if (old && isSameRule(old.rule, rule)) {
          next.push(old);
          continue;
        }
        let runtime: RuleRuntime;
        try {
          runtime = await this.createRuntime(rule);
        } catch (error) {
          unbound.push({ name: rule.name, config: rule.config, message: (error as Error).message });
          this.options.logger.error({ err: error, alert: rule.name }, 'alert rule cannot be evaluated over its view; left out until the next definitions');
          continue;
        }
        next.push(runtime);
        if (!old) restored.push(runtime);
        else if (keysKeepMeaning(old.rule, rule)) await this.carry(old, runtime);
        else ending.push(...endInstances(old.rule, old.instances.values(), 'rule changed: its view has other dimensions', nowMs));
      }
      const dropped = this.runtimes.filter((r) => !next.includes(r));
      for (const old of dropped) if (removed.has(old.rule.name)) ending.push(...endInstances(old.rule, old.instances.values(), 'rule removed', nowMs));
      const records = await this.options.store.append(ending);
      this.runtimes = next;
      await this.restore(restored);
      for (const old of dropped) await this.dropRuntime(old, next);
      this.forgetClocks();
      this.countInstances();
      this.options.onRecords?.(records);
      return { records, unbound };
    });
  }

  /** The key tables a rule's queries join against, and the types of its view's dimensions. */
  private async createRuntime(rule: AlertRule): Promise<RuleRuntime> {
    const id = this.tableIds++;
    return {
      rule,
      active: await KeyTable.create(this.connection, `__alert_active_${id}`),
      wanted: await KeyTable.create(this.connection, `__alert_wanted_${id}`),
      dimTypes: await bindAlertRule(this.connection, rule),
      instances: new Map(),
      lastWindow: undefined,
      examined: undefined,
    };
  }

  /** `to` takes over the instances of `from` (the same rule, changed), as they are. */
  private async carry(from: RuleRuntime, to: RuleRuntime): Promise<void> {
    for (const [keyJson, instance] of from.instances) to.instances.set(keyJson, instance);
    await to.active.add([...from.instances.values()].filter((i) => isActive(i.state)).map((i) => i.keyJson));
  }

  private async dropRuntime(runtime: RuleRuntime, kept: readonly RuleRuntime[]): Promise<void> {
    await runtime.active.drop();
    await runtime.wanted.drop();
    const name = runtime.rule.name;
    if (kept.some((r) => r.rule.name === name)) return;
    for (const state of ['pending', 'firing', 'resolved']) this.options.metrics?.instances.remove({ alert: name, state });
  }

  /** Clocks of views no rule reads any more (or of a definition replaced since). */
  private forgetClocks(): void {
    const used = new Set(this.runtimes.map((r) => clockKey(r.rule.view)));
    for (const key of this.clocks.keys()) if (!used.has(key)) this.clocks.delete(key);
  }

  get lastEvaluation(): { atMs: number; durationMs: number } | null {
    return this.last;
  }

  /** Every instance that is pending, firing or recently resolved. */
  instances(): AlertInstance[] {
    return this.runtimes.flatMap((r) => [...r.instances.values()]);
  }

  /**
   * Evaluates all rules as of `nowMs`. Evaluations run one after another; a call made while one
   * is already waiting to start joins it (with the later `nowMs`), so micro-batches that come
   * faster than evaluations never build a queue.
   */
  evaluate(nowMs: number = Date.now()): Promise<EvaluationReport> {
    if (this.waiting) {
      this.waiting.nowMs = Math.max(this.waiting.nowMs, nowMs);
      return this.waiting.report;
    }
    const waiting: { nowMs: number; report: Promise<EvaluationReport> } = { nowMs, report: Promise.resolve(undefined as never) };
    waiting.report = this.lock.runExclusive(() => {
      this.waiting = undefined;
      return this.evaluateNow(waiting.nowMs);
    });
    this.waiting = waiting;
    return waiting.report;
  }

  /**
   * The value measures of the listed instances over the window of the last evaluation, per
   * alert and key JSON (absent: no data in the window). For the API's "current value".
   */
  currentValues(): Promise<Map<string, Map<string, string>>> {
    return this.lock.runExclusive(async () => {
      const result = new Map<string, Map<string, string>>();
      for (const runtime of this.runtimes) {
        if (runtime.instances.size === 0 || runtime.lastWindow === undefined) continue;
        result.set(runtime.rule.name, await this.valuesOf(runtime, runtime.lastWindow, [...runtime.instances.keys()]));
      }
      return result;
    });
  }

  close(): Promise<void> {
    return this.lock.runExclusive(async () => {
      this.closed = true;
      this.connection.closeSync();
    });
  }

  private async evaluateNow(nowMs: number): Promise<EvaluationReport> {
    const startedMs = performance.now();
    const snapshots = new Map<string, CacheSnapshot>();
    for (const { rule } of this.runtimes) {
      const cache = this.cacheOf(rule.view);
      if (cache?.isReady) snapshots.set(rule.view.definition.name, cache.snapshot());
    }
    await this.advanceClocks(nowMs);
    const clockedMs = performance.now();
    const changes: Change[] = [];
    const newRecords: NewAlertRecord[] = [];
    const failedRules: string[] = [];
    const examined = new Map<RuleRuntime, Examined | undefined>();
    for (const runtime of this.runtimes) {
      try {
        examined.set(runtime, await this.evaluateRule(runtime, nowMs, snapshots.get(runtime.rule.view.definition.name), changes, newRecords));
      } catch (error) {
        examined.set(runtime, undefined);
        failedRules.push(runtime.rule.name);
        this.options.logger.error({ err: error, alert: runtime.rule.name }, 'alert evaluation failed');
      }
    }
    for (const runtime of this.runtimes) runtime.examined = undefined; // until recorded and applied
    const judgedMs = performance.now();
    const records = await this.options.store.append(newRecords);
    await this.apply(changes);
    for (const [runtime, e] of examined) runtime.examined = e;
    const durationMs = performance.now() - startedMs;
    this.last = { atMs: nowMs, durationMs };
    this.options.logger.debug(
      { clockMs: Math.round(clockedMs - startedMs), judgeMs: Math.round(judgedMs - clockedMs), recordMs: Math.round(performance.now() - judgedMs), records: records.length },
      'alert rules evaluated',
    );
    this.options.metrics?.evaluationSeconds.observe(durationMs / 1_000);
    for (const r of records) this.options.metrics?.transitions.inc({ alert: r.alert, state: r.reminder ? 'reminder' : r.status });
    this.options.onRecords?.(records);
    // Rows up to the fold each evaluation examined may move; later ones are still "changed".
    void this.lock.runExclusive(() => this.compactWindowCaches(snapshots));
    return { atMs: nowMs, durationMs, records, failedRules };
  }

  /** Compacts the window caches that need it, after an evaluation (before the next one starts). */
  private async compactWindowCaches(examined: ReadonlyMap<string, CacheSnapshot>): Promise<void> {
    if (this.closed) return;
    for (const [view, cache] of this.options.windowCaches ?? []) {
      const snapshot = examined.get(view);
      if (!snapshot) continue;
      try {
        const startedMs = performance.now();
        await cache.compactIfDue(this.connection, { upToFold: snapshot.committedFold });
        const compactMs = performance.now() - startedMs;
        if (compactMs > 1) this.options.logger.debug({ view, compactMs: Math.round(compactMs) }, 'alert window cache compacted');
      } catch (error) {
        this.options.logger.warn({ err: error, view: cache.view.definition.name }, 'compacting an alert window cache failed; retrying after the next evaluation');
      }
    }
  }

  /** Steps the rule's instances that can change; returns what it examined through the window cache. */
  private async evaluateRule(
    runtime: RuleRuntime,
    nowMs: number,
    snapshot: CacheSnapshot | undefined,
    changes: Change[],
    records: NewAlertRecord[],
  ): Promise<Examined | undefined> {
    const { rule, instances } = runtime;
    const window = this.windowOf(rule, nowMs);
    runtime.lastWindow = window;
    const stepped: Stepped[] = [];
    const seen = new Set<string>();
    const step = (keyJson: string, hasData: boolean, conditionTrue: boolean, clearTrue: boolean) => {
      const previous = instances.get(keyJson);
      const next = stepAlert(previous?.state ?? INACTIVE, { conditionTrue, clearTrue, value: null, nowMs }, rule.timing);
      if (next.transitions.length > 0) stepped.push({ keyJson, hasData, state: next.state, transitions: next.transitions, previous });
    };
    if (window !== undefined) {
      const reader = await this.connection.runAndReadAll(judgeSql(rule, this.examinedStatesSql(runtime, window, snapshot), runtime.active.sql));
      // An empty result has no column vectors at all.
      const [keys = [], conditions = [], clears = []] = reader.getColumnsJS() as [string[]?, boolean[]?, boolean[]?];
      for (let i = 0; i < keys.length; i++) {
        seen.add(keys[i]!);
        step(keys[i]!, true, conditions[i]!, clears[i]!);
      }
    }
    for (const [keyJson, instance] of instances) {
      if (seen.has(keyJson)) continue;
      // Not in the result: no data in the window (or `where` excludes it), or quiet. Either way
      // the condition is not true and nothing holds a firing instance.
      if (isActive(instance.state)) step(keyJson, false, NO_DATA.conditionTrue, NO_DATA.clearTrue);
      else if (this.expired(instance.state, nowMs)) changes.push({ runtime, keyJson, instance: null });
    }
    const examined = window && snapshot ? { window, generation: snapshot.generation, fold: snapshot.committedFold } : undefined;
    if (stepped.length === 0) return examined;
    const withData = stepped.filter((s) => s.hasData).map((s) => s.keyJson);
    const values = withData.length > 0 && window !== undefined ? await this.valuesOf(runtime, window, withData) : new Map<string, string>();
    // Key order makes the record order the same on every node.
    stepped.sort((a, b) => (a.keyJson < b.keyJson ? -1 : a.keyJson > b.keyJson ? 1 : 0));
    for (const s of stepped) {
      const valueJson = values.get(s.keyJson) ?? null;
      let lastNotification = s.previous?.lastNotification ?? null;
      for (const t of s.transitions) {
        const id = notificationId(rule.name, s.keyJson, t.status, t.reminder, t.atMs);
        records.push({
          id,
          alert: rule.name,
          keyJson: s.keyJson,
          status: t.status,
          reminder: t.reminder,
          notify: t.notify,
          valueJson,
          window: window ?? null,
          sinceMs: t.sinceMs,
          atMs: t.atMs,
          severity: rule.severity,
          labels: rule.labels,
        });
        if (t.notify) lastNotification = { id, state: t.status, reminder: t.reminder, atMs: t.atMs };
      }
      const kept = s.state.status !== 'inactive';
      changes.push({
        runtime,
        keyJson: s.keyJson,
        instance: kept ? { alert: rule.name, keyJson: s.keyJson, state: s.state, valueJson, window: window ?? null, lastNotification } : null,
      });
    }
    return examined;
  }

  /**
   * The window's state rows of the instances worth judging: all of them, or, when the last
   * evaluation examined this same window of the same cache build, only those of the keys folded
   * since and of the active instances (an inactive or resolved instance whose rows did not change
   * would judge as it did then, which moved nothing).
   */
  private examinedStatesSql(runtime: RuleRuntime, window: EventWindow | null, snapshot: CacheSnapshot | undefined): string {
    const states = this.statesSql(runtime.rule, window);
    const last = runtime.examined;
    const cache = this.cacheOf(runtime.rule.view);
    if (!window || !snapshot || !last || !cache || last.generation !== snapshot.generation) return states;
    if (last.window.startMs !== window.startMs || last.window.endExclusiveMs !== window.endExclusiveMs) return states;
    if (!cache.fewChangedAfter(last.fold)) return states; // the semi-join would cost more than it saves
    return restrictedStatesSql(runtime.rule, states, cache.changedKeysSql(last.fold), runtime.active.sql, runtime.dimTypes);
  }

  private statesSql(rule: AlertRule, window: EventWindow | null): string {
    return window === null ? allStatesSql(rule.view) : windowStatesSql(rule.view, window, this.tablesOf(rule.view));
  }

  private async valuesOf(runtime: RuleRuntime, window: EventWindow | null, keys: readonly string[]): Promise<Map<string, string>> {
    await runtime.wanted.replace(keys);
    const reader = await this.connection.runAndReadAll(valuesSql(runtime.rule, this.statesSql(runtime.rule, window), runtime.wanted.sql, runtime.dimTypes));
    const [found = [], values = []] = reader.getColumnsJS() as [string[]?, string[]?];
    return new Map(found.map((key, i) => [key, values[i]!]));
  }

  /** The rule's window now; null for running totals; undefined while its view holds no data. */
  private windowOf(rule: AlertRule, nowMs: number): EventWindow | null | undefined {
    if (rule.bucketMs === null || rule.windowMs === null) return null;
    const clock = this.clocks.get(clockKey(rule.view));
    if (!clock) return undefined;
    const endBucketMs = windowEndBucketStartMs(clock, nowMs, rule.bucketMs, this.idleMs(rule.bucketMs));
    return slidingWindow(endBucketMs, rule.windowMs, rule.bucketMs);
  }

  /** Where a windowed view's state is read from: its window cache once built, else its own tables. */
  private tablesOf(view: CompiledView): string[] | undefined {
    const cache = this.cacheOf(view);
    return cache?.isReady ? [...cache.tables] : undefined;
  }

  /**
   * The view's window cache, if it holds this definition of it: right after a definitions change,
   * the cache may already be the new definition's while a rule still runs over the old (or the
   * other way round); such a rule reads the view's own tables.
   */
  private cacheOf(view: CompiledView): AlertWindowCache | undefined {
    const cache = this.options.windowCaches?.get(view.definition.name);
    return cache?.view.definitionHash === view.definitionHash ? cache : undefined;
  }

  private idleMs(bucketMs: number): number {
    return this.options.idleMs ?? bucketMs;
  }

  /** One query per windowed view: has a bucket newer than the current window end appeared? */
  private async advanceClocks(nowMs: number): Promise<void> {
    const views = new Map<string, CompiledView>();
    for (const { rule } of this.runtimes) if (rule.bucketMs !== null) views.set(clockKey(rule.view), rule.view);
    for (const [name, view] of views) {
      const bucketMs = view.definition.windowMs!;
      const clock = this.clocks.get(name);
      const endMs = clock ? windowEndBucketStartMs(clock, nowMs, bucketMs, this.idleMs(bucketMs)) : null;
      const [[newest]] = (await this.connection.runAndReadAll(newestBucketSql(view, endMs, this.tablesOf(view)))).getRowsJS() as [[bigint | null]];
      const next = observeNewestBucket(clock, newest === null ? null : Number(newest), nowMs, bucketMs, this.idleMs(bucketMs));
      if (next) this.clocks.set(name, next);
    }
  }

  private expired(state: InstanceState, nowMs: number): boolean {
    return state.status === 'resolved' && nowMs - state.sinceMs >= (this.options.resolvedRetentionMs ?? DEFAULT_RESOLVED_RETENTION_MS);
  }

  /** Moves the in-memory states and the SQL lists of active keys to what was just recorded. */
  private async apply(changes: readonly Change[]): Promise<void> {
    const activated = new Map<RuleRuntime, string[]>();
    const deactivated = new Map<RuleRuntime, string[]>();
    const push = (map: Map<RuleRuntime, string[]>, runtime: RuleRuntime, key: string) => {
      const keys = map.get(runtime);
      if (keys) keys.push(key);
      else map.set(runtime, [key]);
    };
    for (const { runtime, keyJson, instance } of changes) {
      const previous = runtime.instances.get(keyJson);
      const wasActive = previous !== undefined && isActive(previous.state);
      const nowActive = instance !== null && isActive(instance.state);
      if (instance) runtime.instances.set(keyJson, instance);
      else runtime.instances.delete(keyJson);
      if (nowActive && !wasActive) push(activated, runtime, keyJson);
      if (!nowActive && wasActive) push(deactivated, runtime, keyJson);
    }
    for (const [runtime, keys] of deactivated) await runtime.active.remove(keys);
    for (const [runtime, keys] of activated) await runtime.active.add(keys);
    if (changes.length > 0) this.countInstances();
  }

  private countInstances(): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    for (const { rule, instances } of this.runtimes) {
      const counts: Record<string, number> = { pending: 0, firing: 0, resolved: 0 };
      for (const instance of instances.values()) counts[instance.state.status] = (counts[instance.state.status] ?? 0) + 1;
      for (const [state, count] of Object.entries(counts)) metrics.instances.set({ alert: rule.name, state }, count);
    }
  }

  /** Restores the instances of `runtimes` from their newest records in the store. */
  private async restore(runtimes: readonly RuleRuntime[]): Promise<void> {
    if (runtimes.length === 0) return;
    const byName = new Map(runtimes.map((r) => [r.rule.name, r]));
    const changes: Change[] = [];
    for (const record of await this.options.store.latestPerInstance()) {
      const runtime = byName.get(record.alert);
      if (!runtime || record.status === 'inactive') continue;
      const state: InstanceState = { status: record.status, sinceMs: record.sinceMs, lastNotifiedAtMs: record.status === 'firing' ? record.atMs : null };
      const lastNotification = record.notify ? { id: record.id, state: record.status, reminder: record.reminder, atMs: record.atMs } : null;
      changes.push({ runtime, keyJson: record.keyJson, instance: { alert: record.alert, keyJson: record.keyJson, state, valueJson: record.valueJson, window: record.window, lastNotification } });
    }
    await this.apply(changes);
    if (changes.length > 0) this.options.logger.info({ instances: changes.length }, 'restored alert instances from the alert store');
  }
}

/** Event clocks are per view definition: a view redefined (another bucket width, other data) starts a new one. */
function clockKey(view: CompiledView): string {
  return `${view.definition.name}\u0000${view.definitionHash}`;
}
