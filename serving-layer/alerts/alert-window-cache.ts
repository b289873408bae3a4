import type { DuckDBConnection } from '@duckdb/node-api';
import { inTransaction } from '../../core/duckdb/in-transaction.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import type { CompiledView } from '../../core/views/view-compiler.ts';
import { WINDOW_START } from '../../core/views/view-definition.ts';
import { batchTable, realtimeTable } from '../../core/views/view-tables.ts';
import { timestampSql } from './alert-query.ts';

/** The column of `appended` numbering the fold that wrote a row. */
const FOLD = '_fold';

/** Numbers every build of every cache: a cache replaced by another of the same view never repeats a generation. */
let builds = 0;

/** Compaction starts once the appended rows reach this many, or a quarter of the merged rows. */
const MIN_COMPACT_ROWS = 8_192;

/**
 * The partial state of a windowed view's recent buckets, for alert evaluation: realtime state is
 * kept per offset block, close to a row per event, so alerts read this instead. Two tables read
 * together: `appended` takes each micro-batch's partial state in one INSERT, and `compactIfDue`
 * (off the speed layer's path) merges it into `merged` once it outgrows a quarter of it.
 *
 * Exactness: rebuilt from batch ⊎ realtime, then each committed micro-batch is folded in, both on
 * the speed layer's serialised commit path, so every event counts once (a rebuild skips folding
 * the micro-batch it runs for). Buckets older than `retainMs` before the newest are dropped.
 */
export class AlertWindowCache {
  /** The tables holding the window's partial state, as SQL names them; merge them to read (a (bucket, key) may have rows in both). */
  readonly tables: readonly string[];
  private readonly merged: string;
  private readonly appended: string;
  /** A temp table of the compaction's connection: the buckets it rewrites. */
  private readonly rewritten: string;
  private stale = true;
  private ready = false;
  /** A fold ran inside a transaction whose commit has not been confirmed (`committed`). */
  private uncommitted = false;
  private newestBucketMs: number | null = null;
  private mergedRows = 0;
  /** Numbers the folds; the appended rows carry theirs (FOLD) so a compaction moves committed ones only. */
  private foldSeq = 0;
  private committedFoldSeq = 0;
  private compacting: Promise<void> | undefined;
  /** The compaction of the cache this one replaced, if it was running (see `replaces`). */
  private predecessorCompacting: Promise<void> | undefined;
  /** Changes with every rebuild; unique across caches (see `builds`). */
  private generation = 0;
  private readonly minCompactRows: number;
  private readonly maxChangedShare: number;
  private appendedRows = 0;
  /** The rows each fold still in `appended` wrote. */
  private foldRows: { readonly fold: number; readonly rows: number }[] = [];
  /** State columns kept NULL (typed): sketches of distinct-count measures no rule uses. */
  private readonly nulledStates: readonly string[];

  constructor(
    readonly view: CompiledView,
    private readonly retainMs: number,
    options: {
      readonly unusedMeasures?: ReadonlySet<string>;
      /** Appended rows that always allow a compaction (default MIN_COMPACT_ROWS; tests use tiny ones). */
      readonly minCompactRows?: number;
      /** See `fewChangedAfter` (default 0.1; Infinity: always judge only what changed, for tests). */
      readonly maxChangedShare?: number;
      /**
       * The cache of the same view this one replaces (new rules): its compaction, which writes
       * the same tables, is waited for before the first build.
       */
      readonly replaces?: AlertWindowCache;
    } = {},
  ) {
    // Ignored here: a failed compaction of the old cache only left its rows where they were; the rebuild replaces them.
    this.predecessorCompacting = options.replaces?.compacting?.catch(() => undefined);
    this.maxChangedShare = options.maxChangedShare ?? 0.1;
    this.minCompactRows = options.minCompactRows ?? MIN_COMPACT_ROWS;
    const name = view.definition.name;
    this.merged = quoteIdent(`__alert_window__${name}`);
    this.appended = quoteIdent(`__alert_window_appended__${name}`);
    this.rewritten = quoteIdent(`__alert_window_rewritten__${name}`);
    this.tables = [this.merged, this.appended];
    this.nulledStates = view.stateColumns.filter((s) => options.unusedMeasures?.has(s.measure)).map((s) => s.name);
  }

  /**
   * What a reader needs to examine only what changed: `generation` changes with every rebuild;
   * rows folded after fold number `committedFold` may not be visible yet.
   */
  snapshot(): { readonly generation: number; readonly committedFold: number } {
    return { generation: this.generation, committedFold: this.committedFoldSeq };
  }

  /**
   * Whether the folds after `afterFold` touched few enough keys (under `maxChangedShare` of the
   * keys the cache holds, estimated from the rows appended) that judging only them beats judging
   * all of them.
   */
  fewChangedAfter(afterFold: number): boolean {
    if (this.maxChangedShare === Infinity) return true;
    const appended = this.foldRows.reduce((sum, f) => (f.fold > afterFold ? sum + f.rows : sum), 0);
    const buckets = Math.max(1, Math.ceil(this.retainMs / (this.view.definition.windowMs ?? this.retainMs)));
    return appended < this.maxChangedShare * (this.mergedRows / buckets);
  }

  /** The keys (the view's dimensions) of the rows folded after fold number `afterFold`. */
  changedKeysSql(afterFold: number): string {
    const dims = this.view.definition.dimensions.map(quoteIdent);
    return `SELECT DISTINCT ${dims.length > 0 ? dims.join(', ') : '1 AS __one'} FROM ${this.appended} WHERE ${FOLD} > ${Math.trunc(afterFold)}`;
  }

  /** The tables' names are the view's: a cache with the same key is interchangeable with this one. */
  get key(): string {
    return `${this.view.definition.name}\u0000${this.view.definitionHash}\u0000${this.retainMs}\u0000${[...this.nulledStates].sort().join(',')}`;
  }

  /** Drops the tables (the view has no windowed rule any more), in the caller's transaction. */
  async drop(connection: DuckDBConnection): Promise<void> {
    await connection.run(`DROP TABLE IF EXISTS ${this.merged}`);
    await connection.run(`DROP TABLE IF EXISTS ${this.appended}`);
  }

  /** True once built: the evaluator reads the window from here instead of the view's tables. */
  get isReady(): boolean {
    return this.ready;
  }

  /**
   * The transaction of the last `afterMicroBatch(…, { inTransaction: true })` committed: the
   * tables it built may be read from now on (not earlier: readers on other connections would not
   * find them). Without this call before the next micro-batch, that one rebuilds.
   */
  committed(): void {
    this.uncommitted = false;
    this.committedFoldSeq = this.foldSeq;
    if (!this.stale) this.ready = true;
  }

  /**
   * The next micro-batch rebuilds the tables instead of folding its events in: after a swap that
   * replaced a view's definition (a plain swap only moves state from realtime to batch).
   */
  markStale(): void {
    this.stale = true;
  }

  /**
   * Call in the speed layer's serialised commit path, on its connection, for every micro-batch:
   * inside its transaction, after its realtime rows are written (`inTransaction`: best, the cache
   * then moves atomically with realtime state), or right after it committed. `events` is the
   * relation of the micro-batch's decoded events (schema fields, `_partition`, `_offset`),
   * undefined when it had none.
   */
  async afterMicroBatch(connection: DuckDBConnection, events: string | undefined, options: { readonly inTransaction?: boolean } = {}): Promise<void> {
    const inCallerTransaction = options.inTransaction ?? false;
    // The previous fold ran in a transaction that never committed: what this object believes of
    // the tables (built, newest bucket, row counts) may be rolled back. Start over.
    if (this.uncommitted) this.stale = true;
    this.uncommitted = inCallerTransaction;
    if (this.stale) {
      await this.compacting;
      await this.predecessorCompacting;
      this.predecessorCompacting = undefined;
      if (inCallerTransaction) await this.rebuild(connection);
      else await inTransaction(connection, () => this.rebuild(connection));
      if (!inCallerTransaction) this.committed();
      return;
    }
    if (!events) return;
    const fold = ++this.foldSeq;
    const inserted = await connection.run(
      `INSERT INTO ${this.appended} BY NAME SELECT *, ${fold}::BIGINT AS ${FOLD} FROM (${this.horizonFiltered(this.withoutUnused(`(${this.view.partialSql(events)})`))})`,
    );
    this.appendedRows += inserted.rowsChanged;
    this.foldRows.push({ fold, rows: inserted.rowsChanged });
    if (!inCallerTransaction) this.committed();
  }

  /**
   * Merges the appended rows of committed micro-batches into `merged` once there are enough of
   * them, on the caller's connection (the evaluator's, after an evaluation: off the speed layer's
   * path). Folds may run meanwhile: only rows of folds committed before it started are moved,
   * and none after `upToFold` (those whose changes the evaluator has not examined yet).
   * A rebuild waits for it. Fails harmlessly (rolled back; the rows stay appended).
   */
  async compactIfDue(connection: DuckDBConnection, options: { readonly upToFold?: number } = {}): Promise<void> {
    if (this.compacting || !this.ready || this.stale) return;
    if (this.appendedRows < Math.max(this.minCompactRows, this.mergedRows / 4)) return;
    const upToFold = Math.min(this.committedFoldSeq, options.upToFold ?? Infinity);
    this.compacting = (async () => {
      try {
        await inTransaction(connection, () => this.compact(connection, upToFold));
      } finally {
        this.compacting = undefined;
      }
    })();
    await this.compacting;
  }

  /** `relation` with the unused sketch columns replaced by NULLs of their own type. */
  private withoutUnused(relation: string): string {
    if (this.nulledStates.length === 0) return relation;
    const replaced = this.nulledStates.map((c) => `CASE WHEN false THEN ${quoteIdent(c)} END AS ${quoteIdent(c)}`).join(', ');
    return `(SELECT * REPLACE (${replaced}) FROM ${relation})`;
  }

  /** Rows of `relation` in buckets some window may still reach. */
  private horizonFiltered(relation: string): string {
    if (this.newestBucketMs === null) return `SELECT * FROM ${relation}`;
    return `SELECT * FROM ${relation} WHERE ${quoteIdent(WINDOW_START)} >= ${timestampSql(this.newestBucketMs - this.retainMs)}`;
  }

  private async observeNewest(connection: DuckDBConnection, relation: string): Promise<void> {
    const ws = quoteIdent(WINDOW_START);
    const [[newest]] = (await connection.runAndReadAll(`SELECT epoch_ms(max(${ws})) FROM ${relation}`)).getRowsJS() as [[bigint | null]];
    if (newest !== null) this.newestBucketMs = Math.max(this.newestBucketMs ?? -Infinity, Number(newest));
  }

  /**
   * Moves the appended rows of folds up to `upToFold` into `merged`, one row per (bucket, key).
   * Only the buckets those rows touch are rewritten (usually the newest one or two); once the
   * newest bucket has moved, the whole table is, which also drops the buckets past the horizon
   * and the rows the partial rewrites deleted.
   */
  private async compact(connection: DuckDBConnection, upToFold: number): Promise<void> {
    const ws = quoteIdent(WINDOW_START);
    const moved = `(SELECT * EXCLUDE (${FOLD}) FROM ${this.appended} WHERE ${FOLD} <= ${upToFold})`;
    const newestBefore = this.newestBucketMs;
    await this.observeNewest(connection, moved);
    const [[fromMs]] = (await connection.runAndReadAll(`SELECT epoch_ms(min(${ws})) FROM ${moved}`)).getRowsJS() as [[bigint | null]];
    if (fromMs !== null && this.newestBucketMs === newestBefore) {
      const from = timestampSql(Number(fromMs));
      const both = `(SELECT * FROM ${this.merged} WHERE ${ws} >= ${from} UNION ALL BY NAME SELECT * FROM ${moved})`;
      await connection.run(`CREATE OR REPLACE TEMP TABLE ${this.rewritten} AS SELECT * FROM ${this.withoutUnused(`(${this.view.mergeSql(both)})`)}`);
      const deleted = await connection.run(`DELETE FROM ${this.merged} WHERE ${ws} >= ${from}`);
      const inserted = await connection.run(`INSERT INTO ${this.merged} BY NAME SELECT * FROM ${this.rewritten}`);
      this.mergedRows += inserted.rowsChanged - deleted.rowsChanged;
    } else if (fromMs !== null) {
      await this.replaceMerged(connection, `(SELECT * FROM ${this.merged} UNION ALL BY NAME SELECT * FROM ${moved})`);
    }
    const deleted = await connection.run(`DELETE FROM ${this.appended} WHERE ${FOLD} <= ${upToFold}`);
    this.appendedRows = Math.max(0, this.appendedRows - deleted.rowsChanged);
    this.foldRows = this.foldRows.filter((f) => f.fold > upToFold);
  }

  private async replaceMerged(connection: DuckDBConnection, relation: string): Promise<void> {
    // Unused sketch columns are NULL, yet merging them costs a list and a merge per (bucket, key):
    // replacing the merged column keeps DuckDB from computing it at all.
    const merged = this.withoutUnused(`(${this.view.mergeSql(`(${this.horizonFiltered(relation)})`)})`);
    const created = await connection.run(`CREATE OR REPLACE TABLE ${this.merged} AS SELECT * FROM ${merged}`);
    this.mergedRows = created.rowsChanged;
  }

  /** One row per (bucket, key) from batch ⊎ realtime; a reader sees the old tables or the new ones. */
  private async rebuild(connection: DuckDBConnection): Promise<void> {
    const name = this.view.definition.name;
    const both = `(SELECT * FROM ${quoteIdent(batchTable(name))} UNION ALL BY NAME SELECT * EXCLUDE (_partition, _block) FROM ${quoteIdent(realtimeTable(name))})`;
    this.newestBucketMs = null;
    await this.observeNewest(connection, both);
    await this.replaceMerged(connection, this.withoutUnused(both));
    await connection.run(`CREATE OR REPLACE TABLE ${this.appended} AS SELECT *, 0::BIGINT AS ${FOLD} FROM ${this.merged} LIMIT 0`);
    this.appendedRows = 0;
    this.foldRows = [];
    this.generation = ++builds;
    this.stale = false;
  }
}
