import type { DuckDBConnection } from '@duckdb/node-api';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { inTransaction } from '../../core/duckdb/in-transaction.ts';
import { keepRowsSql } from '../../core/duckdb/table-rewrite.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import type { BoundView } from '../../core/views/bind-views.ts';
import {
  batchTable,
  createMaterializedServingViewSql,
  createMaterializedTableSql,
  MATERIALIZED_LIVE,
  materializedStateColumn,
  materializedTable,
  realtimeTable,
} from '../../core/views/view-tables.ts';

const MERGED = 'materialize_merged';
const MERGED_REF = `temp.main.${MERGED}`;

interface ViewTable {
  readonly bound: BoundView;
  readonly table: string;
  /**
   * Live rows, and rows deleted since the table was last built anew. Only the rewrite schedule
   * depends on them, so a rolled-back transaction that leaves them off does no harm.
   */
  rows: number;
  deletedSinceRewrite: number;
}

/** The view's state columns (not its keys). */
function stateNames(bound: BoundView): string[] {
  return bound.view.stateColumns.map((s) => s.name);
}

/**
 * The select list of a state row, key columns then state columns, as the view's merge reads it:
 * from a state table's row, or from a materialized table's row (its kept state); qualified with
 * the row's alias if given.
 */
function stateRowColumns(bound: BoundView, from: { alias?: string; materialized?: boolean } = {}): string {
  const at = from.alias === undefined ? '' : `${from.alias}.`;
  const fromMaterialized = from.materialized ?? false;
  const keys = bound.view.keyColumns.map((k) => `${at}${quoteIdent(k)}`);
  const states = stateNames(bound).map((state) =>
    fromMaterialized ? `${at}${quoteIdent(materializedStateColumn(state))} AS ${quoteIdent(state)}` : `${at}${quoteIdent(state)}`,
  );
  return [...keys, ...states].join(', ');
}

/** Rows `left` and `right` have the same view key; NULL is a key value like any other. */
function sameKeySql(bound: BoundView, left: string, right: string): string {
  return ['true', ...bound.view.keyColumns.map((c) => `${left}.${quoteIdent(c)} IS NOT DISTINCT FROM ${right}.${quoteIdent(c)}`)].join(' AND ');
}

/**
 * Every view's user-visible rows, finalize(merge(batch ∪ realtime)), kept in the table
 * `materialized__<view>` that `<view>` reads, so a query costs what it costs on a plain table.
 *
 * It is maintained where the state changes, in the same transaction (the speed layer's
 * RealtimeListener commit points), so a query still sees one consistent snapshot:
 *
 *  - a micro-batch changes the state of exactly the keys of its events that pass the view's
 *    filter (late events included: their key carries their old window), so those keys' rows are
 *    replaced: each key realtime state has keeps its merged state (batch ⊕ every realtime row of
 *    the key) beside its row, and the micro-batch merges its own partial state into that (merging
 *    is associative), so the cost does not grow with the realtime rows a key has gathered;
 *  - a batch handoff replaces the batch state and drops realtime blocks: the tables are rebuilt,
 *    but for the views whose state it left as it was (the speed layer's `current`: a batch file
 *    shared with the serving version, at unchanged cuts, so neither state table changed) or
 *    materialized anew itself (`serveView` of a promoted definition);
 *  - a compaction of realtime blocks does not change the merged state: nothing to do.
 *
 * Writes to the state tables that bypass these hooks (tests writing them by hand) are not seen
 * until the next `rebuild`; a database without a speed layer keeps the merging views instead.
 *
 * Deleted rows give their memory back only at a checkpoint, which an in-memory database never
 * takes by itself, so a table is built anew (inside the same transaction) once it has deleted as
 * many rows as it holds: amortised constant work per row changed. There are no indexes: the
 * upkeep of a micro-batch scans the view's table and the batch state, per view.
 */
export class MaterializedViews {
  private constructor(
    private tables: ViewTable[],
    private readonly rewriteMinRows: number,
  ) {}

  /**
   * Builds every view's table from the current state and points `<view>` at it, in one
   * transaction on `connection`. From then on every write to view state must go through the hooks.
   */
  static async create(connection: DuckDBConnection, views: readonly BoundView[], options: { rewriteMinRows?: number } = {}): Promise<MaterializedViews> {
    const tables = views.map((bound) => ({ bound, table: quoteIdent(materializedTable(bound.view.definition.name)), rows: 0, deletedSinceRewrite: 0 }));
    const materialized = new MaterializedViews(tables, options.rewriteMinRows ?? 50_000);
    await inTransaction(connection, async () => {
      await materialized.rebuild(connection);
      for (const { bound } of tables) await connection.run(createMaterializedServingViewSql(bound));
    });
    return materialized;
  }

  /**
   * Materializes `bound` (a view now served, or served with a new definition) from its state
   * tables and points `<view>` at it; in the caller's transaction (after ServingDatabase.serveView).
   */
  async serveView(connection: DuckDBConnection, bound: BoundView): Promise<void> {
    const name = bound.view.definition.name;
    this.tables = this.tables.filter((t) => t.bound.view.definition.name !== name);
    const t: ViewTable = { bound, table: quoteIdent(materializedTable(name)), rows: 0, deletedSinceRewrite: 0 };
    this.tables.push(t);
    await this.build(connection, t);
    await connection.run(createMaterializedServingViewSql(bound));
  }

  /** Whether `name` has its materialized table (a view without one reads its state tables, merging on read). */
  has(name: string): boolean {
    return this.tables.some((t) => t.bound.view.definition.name === name);
  }

  /** The set of tables now, to put back when the transaction that changes it rolls back. */
  snapshot(): () => void {
    const tables = this.tables;
    return () => {
      this.tables = tables;
    };
  }

  /** Stops materializing `name` (its view is dropped by ServingDatabase.dropView). */
  async dropView(connection: DuckDBConnection, name: string): Promise<void> {
    this.tables = this.tables.filter((t) => t.bound.view.definition.name !== name);
    await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(materializedTable(name))}`);
  }

  /** Recomputes the keys the micro-batch's `events` touched; runs in the micro-batch's transaction. */
  async microBatchInTransaction(connection: DuckDBConnection, events: string | undefined): Promise<void> {
    if (events === undefined) return;
    for (const t of this.tables) await this.refreshKeys(connection, t, events);
  }

  /**
   * Rebuilds the tables of the views not `current` (RealtimeListener); runs in the handoff
   * transaction, after the swap and the drop.
   */
  async batchAppliedInTransaction(connection: DuckDBConnection, _manifest?: BatchManifest, current: ReadonlySet<string> = new Set()): Promise<void> {
    for (const t of this.tables) if (!current.has(t.bound.view.definition.name)) await this.build(connection, t);
  }

  /**
   * Builds every table anew from both state tables; run inside the caller's transaction. The batch
   * state holds one merged row per key, so a key without realtime rows is only finalized: most
   * keys, and the costly merges (distinct sketches) are left to the keys realtime touched.
   */
  async rebuild(connection: DuckDBConnection): Promise<void> {
    for (const t of this.tables) await this.build(connection, t);
  }

  private async build(connection: DuckDBConnection, t: ViewTable): Promise<void> {
    const { view } = t.bound;
    const name = view.definition.name;
    const realtime = quoteIdent(realtimeTable(name));
    const batchOnly = `(SELECT s.* FROM ${quoteIdent(batchTable(name))} AS s ANTI JOIN ${realtime} AS r ON ${sameKeySql(t.bound, 's', 'r')})`;
    await connection.run(`DROP TABLE IF EXISTS ${t.table}`);
    await connection.run(createMaterializedTableSql(t.bound));
    // BY NAME: a key only in the batch state keeps no merged state (its state columns stay NULL).
    const finalized = (await connection.run(`INSERT INTO ${t.table} BY NAME ${view.finalizeSql(batchOnly)}`)).rowsChanged;
    const columns = stateRowColumns(t.bound);
    const union = `(SELECT ${stateRowColumns(t.bound, { alias: 's' })} FROM ${quoteIdent(batchTable(name))} AS s SEMI JOIN ${realtime} AS r ON ${sameKeySql(t.bound, 's', 'r')}
      UNION ALL SELECT ${columns} FROM ${realtime})`;
    const merged = await this.insertMerged(connection, t, union);
    t.rows = finalized + merged;
    t.deletedSinceRewrite = 0;
  }

  /**
   * The keys of the micro-batch's events that pass the filter get their merged state anew: the
   * state kept beside their row (or, for a key realtime had not touched yet, its batch state),
   * merged with the micro-batch's own partial state: the work of the keys touched, however many
   * realtime rows they already have.
   */
  private async refreshKeys(connection: DuckDBConnection, t: ViewTable, events: string): Promise<void> {
    const { view } = t.bound;
    const name = view.definition.name;
    // One statement computes the new merged states (the micro-batch's partial state, read
    // three times, computed once); their keys are exactly the keys it touched. Semi and anti
    // joins rather than EXISTS, which DuckDB plans as delim joins (~10 ms even over a few rows).
    const delta = 'materialize_delta';
    const liveRows = `(SELECT * FROM ${t.table} WHERE ${quoteIdent(MATERIALIZED_LIVE)})`;
    const kept = `SELECT ${stateRowColumns(t.bound, { alias: 'm', materialized: true })} FROM ${liveRows} AS m SEMI JOIN ${delta} AS k ON ${sameKeySql(t.bound, 'm', 'k')}`;
    const firstTouched = `SELECT ${stateRowColumns(t.bound, { alias: 's' })} FROM ${quoteIdent(batchTable(name))} AS s
      SEMI JOIN ${delta} AS k ON ${sameKeySql(t.bound, 's', 'k')} ANTI JOIN ${liveRows} AS m ON ${sameKeySql(t.bound, 's', 'm')}`;
    const union = `(${kept} UNION ALL ${firstTouched} UNION ALL SELECT ${stateRowColumns(t.bound)} FROM ${delta})`;
    await connection.run(`CREATE OR REPLACE TEMP TABLE ${MERGED} AS WITH ${delta} AS MATERIALIZED (${view.partialSql(events)}) ${view.mergeSql(union)}`);
    const deleted = (await connection.run(`DELETE FROM ${t.table} AS m USING ${MERGED_REF} AS k WHERE ${sameKeySql(t.bound, 'm', 'k')}`)).rowsChanged;
    const inserted = await this.insertFinalized(connection, t);
    t.rows += inserted - deleted;
    t.deletedSinceRewrite += deleted;
    if (t.deletedSinceRewrite >= Math.max(this.rewriteMinRows, t.rows)) await this.rewrite(connection, t);
  }

  /** Merges the state rows `union` per key into the table: finalized, with the merged state kept. */
  private async insertMerged(connection: DuckDBConnection, t: ViewTable, union: string): Promise<number> {
    await connection.run(`CREATE OR REPLACE TEMP TABLE ${MERGED} AS ${t.bound.view.mergeSql(union)}`);
    return this.insertFinalized(connection, t);
  }

  /** Inserts the merged states of the temp table `materialize_merged` finalized, with those states kept beside; drops it. */
  private async insertFinalized(connection: DuckDBConnection, t: ViewTable): Promise<number> {
    const kept = [
      ...stateNames(t.bound).map((state) => `${quoteIdent(state)} AS ${quoteIdent(materializedStateColumn(state))}`),
      `true AS ${quoteIdent(MATERIALIZED_LIVE)}`,
    ];
    const inserted = (await connection.run(`INSERT INTO ${t.table} BY NAME ${t.bound.view.finalizeSql(MERGED_REF, kept)}`)).rowsChanged;
    await connection.run(`DROP TABLE ${MERGED_REF}`);
    return inserted;
  }

  /** Builds the table anew from its own live rows (one copy), freeing the memory of the deleted ones. */
  private async rewrite(connection: DuckDBConnection, t: ViewTable): Promise<void> {
    await connection.run(keepRowsSql(t.table, 'true'));
    t.deletedSinceRewrite = 0;
  }
}
