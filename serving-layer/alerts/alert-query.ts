import { quoteIdent } from '../../core/sql/identifiers.ts';
import type { CompiledView } from '../../core/views/view-compiler.ts';
import { WINDOW_START } from '../../core/views/view-definition.ts';
import { batchTable, realtimeTable } from '../../core/views/view-tables.ts';
import type { AlertRule } from './alert-rule.ts';
import type { EventWindow } from './event-clock.ts';

/**
 * The SQL an alert rule runs after each micro-batch (pure: strings only). It merges the partial
 * state of the view over the sliding window, per combination of the view's dimensions, and
 * finalizes it with the view's own finalize expressions, so an average over five one-minute
 * buckets is Σsum / Σcount over the five, never an average of averages.
 *
 * The trick that reuses CompiledView.mergeFinalizeSql unchanged: every state row in the window
 * is given the same `window_start` (the window's start), so grouping by the view's keys groups by
 * the dimensions alone, and the finalized rows carry `window_start` as the user expects it
 * (the start of the window) for `where`, `condition` and `clear`, which bindViews checked
 * against exactly these columns.
 *
 * Two queries keep the cost with the instances that matter: `judgeSql` finalizes the instances
 * it is given (all, or through `restrictedStatesSql` only those whose state rows changed since the
 * last evaluation of the same window, and the active ones) but returns only key, condition and
 * clear, and only for instances that can change; `valuesSql` finalizes the value measures of the
 * few instances that did change (or that the API lists).
 */

/** The column of the temp table holding the keys of a rule's pending and firing instances. */
export const ACTIVE_KEY_COLUMN = 'key';

export function timestampSql(ms: number): string {
  return `epoch_ms(${Math.trunc(ms)}::BIGINT)`;
}

function structJson(columns: readonly string[], alias: string): string {
  if (columns.length === 0) return `'{}'`;
  return `to_json(struct_pack(${columns.map((c) => `${quoteIdent(c)} := ${alias}.${quoteIdent(c)}`).join(', ')}))::VARCHAR`;
}

/**
 * Partial-state rows of the window from `tables` (the view's batch and realtime tables, or the
 * alert window cache), each relabelled to the window's start.
 */
export function windowStatesSql(view: CompiledView, window: EventWindow, tables: readonly string[] = viewTables(view)): string {
  const columns = [...view.definition.dimensions, ...view.stateColumns.map((s) => s.name)].map(quoteIdent).join(', ');
  const ws = quoteIdent(WINDOW_START);
  const pick = (table: string) =>
    `SELECT ${timestampSql(window.startMs)} AS ${ws}${columns ? `, ${columns}` : ''} FROM ${table} ` +
    `WHERE ${ws} >= ${timestampSql(window.startMs)} AND ${ws} < ${timestampSql(window.endExclusiveMs)}`;
  return tables.map(pick).join('\n UNION ALL\n ');
}

/** Partial-state rows of both tables (running totals: no window). */
export function allStatesSql(view: CompiledView): string {
  const columns = [...view.keyColumns, ...view.stateColumns.map((s) => s.name)].map(quoteIdent).join(', ');
  return viewTables(view)
    .map((table) => `SELECT ${columns} FROM ${table}`)
    .join('\n UNION ALL\n ');
}

function viewTables(view: CompiledView): string[] {
  const name = view.definition.name;
  return [quoteIdent(batchTable(name)), quoteIdent(realtimeTable(name))];
}

function sameKeySql(dims: readonly string[], a: string, b: string): string {
  return dims.length === 0 ? 'true' : dims.map((d) => `${a}.${quoteIdent(d)} IS NOT DISTINCT FROM ${b}.${quoteIdent(d)}`).join(' AND ');
}

/**
 * One row (`__key`, `__condition`, `__clear`) per instance worth looking at: condition true,
 * clear false, or already pending/firing (listed in `activeKeysTable`). Everything else is quiet
 * and needs no work in JS. Only the measures the rule uses are finalized: DuckDB drops the other
 * aggregates, a distinct-count sketch first.
 */
export function judgeSql(rule: AlertRule, statesSql: string, activeKeysTable: string): string {
  const view = rule.view;
  const dims = view.definition.dimensions;
  const condition = `coalesce((${rule.condition}), false)`;
  const clear = rule.clear === undefined ? `NOT ${condition}` : `coalesce((${rule.clear}), true)`;
  return [
    `SELECT __key, __condition, __clear FROM (`,
    `  SELECT ${structJson(dims, 'v')} AS __key, ${condition} AS __condition, ${clear} AS __clear`,
    `  FROM (${view.mergeFinalizeSql(`(${statesSql})`)}) AS v`,
    rule.where === undefined ? '' : `  WHERE coalesce((${rule.where}), false)`,
    `) WHERE __condition OR NOT __clear OR __key IN (SELECT ${quoteIdent(ACTIVE_KEY_COLUMN)} FROM ${activeKeysTable})`,
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * `statesSql` restricted to the instances that may have changed: the keys in `changedKeysSql`
 * (the view's dimensions) and those listed (as key JSON) in `activeKeysTable`.
 */
export function restrictedStatesSql(rule: AlertRule, statesSql: string, changedKeysSql: string, activeKeysTable: string, dimTypes: readonly string[]): string {
  const dims = rule.view.definition.dimensions;
  if (dims.length === 0) return `SELECT s.* FROM (${statesSql}) AS s WHERE EXISTS (${changedKeysSql}) OR EXISTS (SELECT 1 FROM ${activeKeysTable})`;
  const typed = dims.map((d, i) => `CAST(json_extract_string(${quoteIdent(ACTIVE_KEY_COLUMN)}, ${quoteLiteralPath(d)}) AS ${dimTypes[i]}) AS ${quoteIdent(d)}`);
  const keys = `${changedKeysSql} UNION SELECT ${typed.join(', ')} FROM ${activeKeysTable}`;
  return `SELECT s.* FROM (${statesSql}) AS s SEMI JOIN (${keys}) AS c ON ${sameKeySql(dims, 'c', 's')}`;
}

/**
 * The rule's value measures (`__value`, a JSON object) for the instances whose keys are listed in
 * `keysTable`, finalized from their own state rows only. `dimTypes` turns the key JSON back into
 * typed dimension values to match them.
 */
export function valuesSql(rule: AlertRule, statesSql: string, keysTable: string, dimTypes: readonly string[]): string {
  const view = rule.view;
  const dims = view.definition.dimensions;
  const typed = dims.map((d, i) => `CAST(json_extract_string(${quoteIdent(ACTIVE_KEY_COLUMN)}, ${quoteLiteralPath(d)}) AS ${dimTypes[i]}) AS ${quoteIdent(d)}`);
  return [
    `WITH __wanted AS (SELECT ${[`${quoteIdent(ACTIVE_KEY_COLUMN)} AS __key`, ...typed].join(', ')} FROM ${keysTable})`,
    `SELECT w.__key, ${structJson(rule.valueMeasures, 'v')} AS __value`,
    `FROM __wanted AS w JOIN (${view.mergeFinalizeSql(`(SELECT s.* FROM (${statesSql}) AS s SEMI JOIN __wanted AS q ON ${sameKeySql(dims, 'q', 's')})`)}) AS v`,
    `ON ${sameKeySql(dims, 'w', 'v')}`,
  ].join('\n');
}

/** The types of the view's dimensions as the finalized rows carry them (for `valuesSql`). */
export function dimensionsSql(view: CompiledView, statesSql: string): string {
  const dims = view.definition.dimensions.map(quoteIdent);
  return `SELECT ${dims.length > 0 ? dims.join(', ') : '1'} FROM (${view.mergeFinalizeSql(`(${statesSql})`)}) LIMIT 0`;
}

function quoteLiteralPath(dimension: string): string {
  return `'$."${dimension}"'`;
}

/** The newest bucket start (epoch ms) in `tables` after `afterMs`, or NULL. */
export function newestBucketSql(view: CompiledView, afterMs: number | null, tables: readonly string[] = viewTables(view)): string {
  const ws = quoteIdent(WINDOW_START);
  const filter = afterMs === null ? '' : ` WHERE ${ws} > ${timestampSql(afterMs)}`;
  return `SELECT epoch_ms(max(b)) AS newest FROM (${tables.map((t) => `SELECT max(${ws}) AS b FROM ${t}${filter}`).join(' UNION ALL ')})`;
}
