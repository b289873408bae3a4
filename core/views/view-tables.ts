import { quoteIdent } from '../sql/identifiers.ts';
import type { BoundView } from './bind-views.ts';

/**
 * The DuckDB tables behind each view in a serving process (DESIGN.md, "Exact handoff"):
 *
 *   batch__<view>     merged partial state of the current batch version (offsets < cut)
 *   realtime__<view>  partial state from the speed layer per (key, _partition, _block),
 *                     for offsets ≥ cut only; any number of rows per key may exist
 *   materialized__<view>  finalize(merge(batch ∪ realtime)) stored, one row per key, where the
 *                     serving layer maintains it at the speed layer's commit points (with the
 *                     merged state beside it for the keys realtime state has)
 *   <view>            what users query: a SQL view over materialized__<view> where it is
 *                     maintained, else computing finalize(merge(batch ∪ realtime)) on every read
 *
 * Replacing batch__<view> and deleting realtime blocks below the new cut happen in one DuckDB
 * transaction (as does the upkeep of materialized__<view>), so a query sees either the old pair
 * or the new pair, never a mix.
 */
export const REALTIME_KEYS = [
  { name: '_partition', type: 'INTEGER' },
  { name: '_block', type: 'BIGINT' },
] as const;

export function batchTable(view: string): string {
  return `batch__${view}`;
}

export function realtimeTable(view: string): string {
  return `realtime__${view}`;
}

/**
 * Realtime state of a view's next definition (added or changed, not yet exact): kept beside the
 * served one until a batch version holds that definition, then renamed to realtime__<view>.
 */
export function pendingRealtimeTable(view: string): string {
  return `realtime_pending__${view}`;
}

export function materializedTable(view: string): string {
  return `materialized__${view}`;
}

/** Key and state columns with types, in the order the partial SQL produces them. */
function stateColumnsDdl(bound: BoundView, extra: readonly { name: string; type: string }[] = []): string {
  const keys = bound.stateColumns.filter((c) => bound.view.keyColumns.includes(c.name));
  const states = bound.stateColumns.filter((c) => !bound.view.keyColumns.includes(c.name));
  return [...keys, ...extra, ...states].map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ');
}

export function createBatchTableSql(bound: BoundView): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(batchTable(bound.view.definition.name))} (${stateColumnsDdl(bound)})`;
}

export function createRealtimeTableSql(bound: BoundView, table = realtimeTable(bound.view.definition.name)): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(table)} (${stateColumnsDdl(bound, REALTIME_KEYS)})`;
}

/**
 * The view's user-visible rows computed from both state tables: finalize(merge(batch ∪ realtime)).
 * `stateFilter`, a condition over a state row aliased `s`, restricts it to some keys.
 */
export function mergedViewSql(bound: BoundView, stateFilter?: string): string {
  const { view } = bound;
  const name = view.definition.name;
  const columns = [...view.keyColumns, ...view.stateColumns.map((s) => s.name)].map(quoteIdent).join(', ');
  const where = stateFilter ? ` WHERE ${stateFilter}` : '';
  const union = `(SELECT ${columns} FROM ${quoteIdent(batchTable(name))} AS s${where} UNION ALL SELECT ${columns} FROM ${quoteIdent(realtimeTable(name))} AS s${where})`;
  return view.mergeFinalizeSql(union);
}

/** The user-facing view, merging both tables on every read. */
export function createServingViewSql(bound: BoundView): string {
  return `CREATE OR REPLACE VIEW ${quoteIdent(bound.view.definition.name)} AS ${mergedViewSql(bound)}`;
}

/**
 * A materialized table's column holding the merged state `state` of its row's key. Not a plain
 * identifier, so no key or measure can be named so.
 */
export function materializedStateColumn(state: string): string {
  return `state:${state}`;
}

/** A materialized table's column that is true where the row's merged state is kept beside it. */
export const MATERIALIZED_LIVE = 'state:live';

/**
 * The table holding the user-visible rows: key columns, then the measures, with their types; then
 * the merged state of the row's key (each state column, then MATERIALIZED_LIVE), kept only for the
 * keys that realtime state touches (NULL elsewhere), so that a micro-batch merges its own partial
 * state into it rather than every realtime row of the key again.
 */
export function createMaterializedTableSql(bound: BoundView): string {
  const states = bound.stateColumns.filter((c) => !bound.view.keyColumns.includes(c.name));
  const columns = [
    ...bound.outputColumns.map((c) => `${quoteIdent(c.name)} ${c.type}`),
    ...states.map((c) => `${quoteIdent(materializedStateColumn(c.name))} ${c.type}`),
    `${quoteIdent(MATERIALIZED_LIVE)} BOOLEAN`,
  ];
  return `CREATE TABLE ${quoteIdent(materializedTable(bound.view.definition.name))} (${columns.join(', ')})`;
}

/** The user-facing view, reading the materialized table (same columns as the merging one). */
export function createMaterializedServingViewSql(bound: BoundView): string {
  const columns = bound.outputColumns.map((c) => quoteIdent(c.name)).join(', ');
  return `CREATE OR REPLACE VIEW ${quoteIdent(bound.view.definition.name)} AS SELECT ${columns} FROM ${quoteIdent(materializedTable(bound.view.definition.name))}`;
}
