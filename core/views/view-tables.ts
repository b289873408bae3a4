import { quoteIdent } from '../sql/identifiers.ts';
import type { BoundView } from './bind-views.ts';

/**
 * The DuckDB tables behind each view in a serving process (DESIGN.md, "Exact handoff"):
 *
 *   batch__<view>     merged partial state of the current batch version (offsets < cut)
 *   realtime__<view>  partial state from the speed layer per (key, _partition, _block),
 *                     for offsets ≥ cut only; any number of rows per key may exist
 *   <view>            a SQL view: finalize(merge(batch ∪ realtime)), what users query
 *
 * Replacing batch__<view> and deleting realtime blocks below the new cut happen in one DuckDB
 * transaction, so a query sees either the old pair or the new pair, never a mix.
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

/** Key and state columns with types, in the order the partial SQL produces them. */
function stateColumnsDdl(bound: BoundView, extra: readonly { name: string; type: string }[] = []): string {
  const keys = bound.stateColumns.filter((c) => bound.view.keyColumns.includes(c.name));
  const states = bound.stateColumns.filter((c) => !bound.view.keyColumns.includes(c.name));
  return [...keys, ...extra, ...states].map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ');
}

export function createBatchTableSql(bound: BoundView): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(batchTable(bound.view.definition.name))} (${stateColumnsDdl(bound)})`;
}

export function createRealtimeTableSql(bound: BoundView): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdent(realtimeTable(bound.view.definition.name))} (${stateColumnsDdl(bound, REALTIME_KEYS)})`;
}

/** The user-facing view over both tables. */
export function createServingViewSql(bound: BoundView): string {
  const { view } = bound;
  const name = view.definition.name;
  const columns = [...view.keyColumns, ...view.stateColumns.map((s) => s.name)].map(quoteIdent).join(', ');
  const union = `(SELECT ${columns} FROM ${quoteIdent(batchTable(name))} UNION ALL SELECT ${columns} FROM ${quoteIdent(realtimeTable(name))})`;
  return `CREATE OR REPLACE VIEW ${quoteIdent(name)} AS ${view.mergeFinalizeSql(union)}`;
}
