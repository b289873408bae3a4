import type { DuckDBConnection } from '@duckdb/node-api';
import { holdsViewAsDefined, type BatchManifest } from '../../core/batch/batch-manifest.ts';
import { batchViewFile } from '../../core/batch/batch-version-files.ts';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import { LambdaError } from '../../core/errors/index.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { quoteIdent, quoteLiteral } from '../../core/sql/identifiers.ts';
import { bindViews, type BoundView } from '../../core/views/bind-views.ts';
import { batchTable } from '../../core/views/view-tables.ts';
import type { RealtimeViewsEditor, StagedFill } from '../../speed-layer/index.ts';
import type { MaterializedViews } from './materialized-views.ts';
import type { ServingDatabase } from './serving-database.ts';

/** The speed layer as LiveViews changes it: one serialised transaction at a time, fills built beside it. */
export interface RealtimeViews {
  changeViews<T>(change: (connection: DuckDBConnection, editor: RealtimeViewsEditor) => Promise<T>): Promise<T>;
  /** `built` is called once the fills' rows are built (what is left is reading which events they hold). */
  stageFills(select: (connection: DuckDBConnection) => Promise<readonly BoundView[]>, relation: string, built?: () => void): Promise<StagedFill[]>;
  dropStaged(staged: readonly StagedFill[]): Promise<void>;
}

/** A view whose next definition is being made exact: added (not served yet) or changed (the old one serves). */
export interface PendingView {
  readonly name: string;
  readonly kind: 'added' | 'changed';
  readonly definitionHash: string;
  /** The new definition as bound to the database (its state columns). */
  readonly bound: BoundView;
  /** The definitions version that introduced this definition. */
  readonly definitionsVersion: number;
  readonly sinceMs: number;
}

/** What one definitions change did to the views of this node. */
export interface ViewsChange {
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  /** Views whose new definition serves now (exact at once: the applied batch version holds it, or there is none). */
  readonly promoted: readonly string[];
}

/** Called inside each transaction that changed which definitions serve, with the definitions running. */
export type ServedViewsListener = (connection: DuckDBConnection, served: LoadedConfig) => Promise<void>;

export interface LiveViewsOptions {
  readonly database: ServingDatabase;
  readonly realtime: RealtimeViews;
  readonly materialized: MaterializedViews;
  /** Where batch versions are (`storage.dir`). */
  readonly storageDir: string;
  /** The relation of every accepted event this node consumed (`events`, MasterDatasetViews). */
  readonly eventsRelation: string;
  readonly logger: Logger;
}

/**
 * The views of one serving process following the published definitions without a restart
 * (issue 16; DESIGN.md, "Definitions are cluster state"):
 *
 *  - a removed view stops serving at once (its tables and realtime state are dropped);
 *  - an added or changed view gets realtime state for its new definition, built from every
 *    accepted event at or above the realtime cuts (`events`, which holds what this node consumed)
 *    and kept up by each micro-batch from then on, beside the served one (pending);
 *  - a pending definition serves once a batch version holds it (the batch master backfills it at
 *    once): in the handoff transaction of that version, its batch state is loaded, its realtime
 *    state takes the served name and the view is materialized again. A changed view serves its
 *    old definition until then; an added one is `backfilling` (queries on it get a 409).
 *
 * Every step runs in one transaction of the speed layer, serialised with its micro-batches, so a
 * query sees the old definition or the new one, never a mix, and no event is counted twice or
 * missed: the new state covers exactly the offsets the served one does.
 */
export class LiveViews {
  private readonly pending = new Map<string, PendingView>();
  private running: LoadedConfig;
  private runningVersion: number;
  private readonly listeners: ServedViewsListener[] = [];
  private readonly commitListeners = new Set<() => void>();
  /**
   * What readers see (`GET /v1/views`, the 409 of a query): the state as of the last commit. The
   * working state above changes inside transactions that may yet roll back or not be visible yet.
   */
  private visible: { readonly served: readonly BoundView[]; readonly pending: ReadonlyMap<string, PendingView>; readonly version: number };

  constructor(
    private readonly options: LiveViewsOptions,
    loaded: LoadedConfig,
    version: number,
  ) {
    this.running = loaded;
    this.runningVersion = version;
    this.visible = { served: options.database.bound, pending: new Map(), version };
  }

  /** Makes the working state the one readers see; call after the transaction that changed it committed. */
  committed(): void {
    this.visible = { served: this.options.database.bound, pending: new Map(this.pending), version: this.runningVersion };
    for (const listener of this.commitListeners) listener();
  }

  /**
   * Calls `listener` (synchronously; it must not throw) after every commit, when what readers see
   * may have changed (those waiting for views to serve). Returns its removal.
   */
  onCommitted(listener: () => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /** The views serving (as of the last commit). */
  servedViews(): readonly BoundView[] {
    return this.visible.served;
  }

  /**
   * Everything this and the tables it changes keep in memory, to put back when the transaction
   * that changed them rolls back (the DuckDB catalog goes back by itself).
   */
  snapshot(): () => void {
    const pending = new Map(this.pending);
    const { running, runningVersion } = this;
    const database = this.options.database.snapshot();
    const materialized = this.options.materialized.snapshot();
    return () => {
      this.pending.clear();
      for (const [name, p] of pending) this.pending.set(name, p);
      this.running = running;
      this.runningVersion = runningVersion;
      database();
      materialized();
    };
  }

  /** Runs `change` (one speed-layer transaction); a rollback puts the in-memory state back too. */
  private async changeViews<T>(change: (connection: DuckDBConnection, editor: RealtimeViewsEditor) => Promise<T>): Promise<T> {
    const restore = this.snapshot();
    try {
      return await this.options.realtime.changeViews(change);
    } catch (error) {
      restore();
      throw error;
    }
  }

  /** Adds a listener to every change of the served definitions (alerting). */
  onServedChange(listener: ServedViewsListener): void {
    this.listeners.push(listener);
  }

  /** The definitions version this node runs (applied, possibly with views still pending). */
  get version(): number {
    return this.visible.version;
  }

  /** The definitions not serving yet (as of the last commit). */
  pendingViews(): PendingView[] {
    return [...this.visible.pending.values()];
  }

  pendingView(name: string): PendingView | undefined {
    return this.visible.pending.get(name);
  }

  /**
   * At start, before the first batch version is applied: a view that version does not hold as
   * defined would serve without its history, so it starts pending instead (realtime state from
   * the cuts on, as for a view added later), until a version holds it.
   */
  async startWith(manifest: BatchManifest | undefined): Promise<void> {
    if (!manifest) return;
    const unheld = this.options.database.bound.filter((b) => !holdsViewAsDefined(manifest, b.view.definition.name, b.view.definitionHash));
    if (unheld.length === 0) return;
    await this.changeViews(async (connection, editor) => {
      for (const bound of unheld) {
        const name = bound.view.definition.name;
        await this.stopServing(connection, editor, name);
        await editor.addView(bound, { pending: true });
        this.pending.set(name, { name, kind: 'added', definitionHash: bound.view.definitionHash, bound, definitionsVersion: this.runningVersion, sinceMs: Date.now() });
      }
      await this.notify(connection);
    });
    this.committed();
    this.options.logger.warn(
      { views: unheld.map((b) => b.view.definition.name), batchVersion: manifest.version },
      'batch version does not hold these views as defined: they are backfilling until a version does',
    );
  }

  /**
   * Runs definitions `loaded` (version `version`) from now on; `applied` is the batch version
   * serving now. Throws (nothing changed) if the new state cannot be built exactly now, e.g. when
   * `events` lags the views (the tail limit); the caller retries. `fillsBuilt` is called once the
   * long part is done: the new definitions' fills built beside the micro-batches.
   */
  async apply(loaded: LoadedConfig, version: number, applied: BatchManifest | undefined, fillsBuilt?: () => void): Promise<ViewsChange> {
    const startedMs = performance.now();
    // The long part of each new definition's fill first, beside the micro-batches: holding them
    // up for it would stall every other view's freshness (~0.5 s for 500k events).
    const staged = await this.options.realtime.stageFills(
      async (connection) => (await bindViews(loaded, connection, { macrosInstalled: true })).filter((b) => this.needsFill(b)),
      this.options.eventsRelation,
      fillsBuilt,
    );
    // Said here too for a stage that had nothing to build (no new definition, or `events` lagging).
    fillsBuilt?.();
    const change = await this.changeViews(async (connection, editor) => {
      const next = await bindViews(loaded, connection, { macrosInstalled: true });
      const nextNames = new Set(next.map((b) => b.view.definition.name));
      const served = new Map(this.options.database.bound.map((b) => [b.view.definition.name, b]));
      const added: string[] = [];
      const changed: string[] = [];
      const removed: string[] = [];
      const pendingNow = new Map(this.pending);
      for (const name of new Set([...served.keys(), ...pendingNow.keys()])) {
        if (nextNames.has(name)) continue;
        await this.stopServing(connection, editor, name);
        await editor.removeView(name, { pending: true });
        pendingNow.delete(name);
        removed.push(name);
      }
      for (const bound of next) {
        const name = bound.view.definition.name;
        const hash = bound.view.definitionHash;
        const servedNow = served.get(name);
        const pendingOne = pendingNow.get(name);
        if (servedNow?.view.definitionHash === hash) {
          // Back to the served definition: the pending one is dropped.
          if (pendingOne) {
            await editor.removeView(name, { pending: true });
            pendingNow.delete(name);
          }
          continue;
        }
        if (pendingOne?.definitionHash === hash) continue;
        if (editor.eventsLagging) {
          throw new LambdaError(`cannot build view ${name} now: \`events\` lags the views (speed.maxEventsTail); retrying`, { retriable: true });
        }
        await editor.addView(bound, { pending: true });
        const fill = staged.find((f) => f.view === name && f.definitionHash === hash);
        if (fill) await editor.fillStaged(fill, { pending: true }, this.options.eventsRelation);
        else await editor.fill(name, { pending: true }, editor.aboveCuts(this.options.eventsRelation));
        pendingNow.set(name, { name, kind: servedNow ? 'changed' : 'added', definitionHash: hash, bound, definitionsVersion: version, sinceMs: Date.now() });
        (servedNow ? changed : added).push(name);
      }
      this.pending.clear();
      for (const [name, p] of pendingNow) this.pending.set(name, p);
      this.running = loaded;
      this.runningVersion = version;
      const promoted = await this.promoteHeld(connection, editor, applied);
      await this.notify(connection);
      return { added, changed, removed, promoted };
    }).finally(() => this.options.realtime.dropStaged(staged));
    this.committed();
    this.options.logger.info({ definitionsVersion: version, ...change, tookMs: Math.round(performance.now() - startedMs) }, `running definitions version ${version}`);
    return change;
  }

  /** Whether `bound` needs realtime state built: neither it serves nor its pending definition is it. */
  private needsFill(bound: BoundView): boolean {
    const name = bound.view.definition.name;
    return this.options.database.view(name)?.view.definitionHash !== bound.view.definitionHash && this.pending.get(name)?.definitionHash !== bound.view.definitionHash;
  }

  /**
   * A served view that `manifest` does not hold as defined, and that no pending definition of it
   * would replace: the node runs other definitions than the batch master did (it is behind), so
   * handing that version over would serve the view without its history. The handoff waits.
   */
  unheldServedViews(manifest: BatchManifest): string[] {
    return this.options.database.bound
      .map((b) => b.view.definition.name)
      .filter((name) => {
        const served = this.options.database.view(name)!;
        if (holdsViewAsDefined(manifest, name, served.view.definitionHash)) return false;
        const next = this.pending.get(name);
        return !(next && holdsViewAsDefined(manifest, name, next.definitionHash));
      });
  }

  /** The pending views `manifest` holds as defined: their batch files to stage for the handoff. */
  heldPending(manifest: BatchManifest): PendingView[] {
    return [...this.pending.values()].filter((p) => holdsViewAsDefined(manifest, p.name, p.definitionHash));
  }

  /**
   * In the handoff transaction of `manifest`, after the served batch tables were swapped: the
   * pending views it holds serve from now on, their batch state read from `staged` (view → table).
   * They serve merging their two state tables on read until `materializePromoted`, run after the
   * commit, builds their materialized table: the handoff (which holds the micro-batches up) and
   * the wait for a new view are shorter by that build (~45 ms for a view over 0.9M live events).
   */
  async promoteInHandoff(connection: DuckDBConnection, editor: RealtimeViewsEditor, manifest: BatchManifest, staged: ReadonlyMap<string, string>): Promise<string[]> {
    const promoted: string[] = [];
    for (const p of this.heldPending(manifest)) {
      const table = staged.get(p.name);
      if (!table) continue;
      await this.promote(connection, editor, p.name, `SELECT * FROM ${quoteIdent(table)}`, { materialize: false });
      promoted.push(p.name);
    }
    if (promoted.length > 0) {
      await this.notify(connection);
      this.options.logger.info({ views: promoted, batchVersion: manifest.version }, 'new view definitions serve: batch version holds them');
    }
    return promoted;
  }

  /** Promotes, in the caller's transaction, every pending view the applied version holds (or all, before any version). */
  private async promoteHeld(connection: DuckDBConnection, editor: RealtimeViewsEditor, applied: BatchManifest | undefined): Promise<string[]> {
    const promoted: string[] = [];
    for (const p of [...this.pending.values()]) {
      if (!applied) {
        // No batch version: realtime state starts at offset 0, so it alone is exact.
        await this.promote(connection, editor, p.name, undefined);
        promoted.push(p.name);
        continue;
      }
      if (!holdsViewAsDefined(applied, p.name, p.definitionHash)) continue;
      const file = batchViewFile(this.options.storageDir, applied, p.name);
      if (!file) continue;
      const columns = p.bound.stateColumns.map((c) => quoteIdent(c.name)).join(', ');
      await this.promote(connection, editor, p.name, `SELECT ${columns} FROM read_parquet(${quoteLiteral(file)})`);
      promoted.push(p.name);
    }
    return promoted;
  }

  /**
   * After the commit of a handoff (in the handoff's queue): builds the materialized table of each
   * served view without one, those it promoted, in one transaction of the speed layer. A failure
   * leaves them merging on read, which is exact, and logged; the next handoff tries again.
   */
  async materializePromoted(): Promise<void> {
    const unmaterialized = this.options.database.bound.filter((b) => !this.options.materialized.has(b.view.definition.name));
    if (unmaterialized.length === 0) return;
    const names = unmaterialized.map((b) => b.view.definition.name);
    try {
      await this.changeViews(async (connection) => {
        for (const bound of unmaterialized) await this.options.materialized.serveView(connection, bound);
      });
    } catch (error) {
      this.options.logger.warn({ err: error, views: names }, 'cannot materialize the views just promoted; they serve merging on read until the next handoff');
    }
  }

  /** The pending definition of `name` serves, with batch rows from `batchRows` (none: empty), materialized unless told not to. */
  private async promote(connection: DuckDBConnection, editor: RealtimeViewsEditor, name: string, batchRows: string | undefined, options: { materialize?: boolean } = {}): Promise<void> {
    const bound = await editor.promote(name);
    await this.options.database.serveView(connection, bound);
    if (batchRows) await connection.run(`INSERT INTO ${quoteIdent(batchTable(name))} BY NAME ${batchRows}`);
    // Not materialized yet: the old definition's table (a changed view) goes, the view merges on read.
    if (options.materialize ?? true) await this.options.materialized.serveView(connection, bound);
    else await this.options.materialized.dropView(connection, name);
    this.pending.delete(name);
  }

  private async stopServing(connection: DuckDBConnection, editor: RealtimeViewsEditor, name: string): Promise<void> {
    await this.options.materialized.dropView(connection, name);
    await this.options.database.dropView(connection, name);
    await editor.removeView(name, { pending: false });
  }

  /** The served definitions: the running set, with the served (old) definition of each changed view and no added one. */
  servedDefinitions(): LoadedConfig {
    const served = new Map(this.options.database.bound.map((b) => [b.view.definition.name, b.view]));
    return { ...this.running, views: [...served.values()] };
  }

  private async notify(connection: DuckDBConnection): Promise<void> {
    const served = this.servedDefinitions();
    for (const listener of this.listeners) await listener(connection, served);
  }
}

