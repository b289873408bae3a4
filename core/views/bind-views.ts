import type { DuckDBConnection } from '@duckdb/node-api';
import type { LoadedConfig } from '../config/load-config.ts';
import { describeQuery, type ColumnType } from '../duckdb/column-types.ts';
import { duckDbMessage } from '../duckdb/duckdb-message.ts';
import { installSqlMacros } from '../duckdb/sql-macros.ts';
import { ConfigError, type ConfigIssue } from '../errors/index.ts';
import { quoteIdent } from '../sql/identifiers.ts';
import type { CompiledView } from './view-compiler.ts';
import type { EventSchema } from './view-definition.ts';

/** The SQL-level facts about a view, known once DuckDB has bound its queries. */
export interface BoundView {
  readonly view: CompiledView;
  readonly stateColumns: readonly ColumnType[];
  readonly outputColumns: readonly ColumnType[];
}

const PROBE = '__lambda_probe_events';

/** Columns every stored event carries besides its schema fields (DESIGN.md, "Storage"). */
export const EVENT_META_COLUMNS: readonly ColumnType[] = [
  { name: '_partition', type: 'INTEGER' },
  { name: '_offset', type: 'BIGINT' },
];

export function eventTableDdl(table: string, schema: EventSchema, options: { temp?: boolean } = {}): string {
  const columns = [...schema.fields.map((f) => ({ name: f.name, type: f.type })), ...EVENT_META_COLUMNS];
  return `CREATE ${options.temp ? 'TEMP ' : ''}TABLE ${quoteIdent(table)} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`;
}

/**
 * Binds every view's and alert's SQL against an empty table of the event schema, so that unknown
 * columns, type errors, nested aggregates and non-boolean conditions are reported at config load
 * with the key path of the offending setting. Throws ConfigError; returns the column types.
 */
export async function bindViews(loaded: LoadedConfig, connection: DuckDBConnection): Promise<BoundView[]> {
  await installSqlMacros(connection);
  await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(PROBE)}`);
  await connection.run(eventTableDdl(PROBE, loaded.schema, { temp: true }));
  const issues: ConfigIssue[] = [];
  const bound: BoundView[] = [];
  try {
    for (const view of loaded.views) {
      const result = await bindView(connection, view, issues);
      if (result) bound.push(result);
    }
    for (const [name, alert] of Object.entries(loaded.config.alerts)) {
      const view = bound.find((b) => b.view.definition.name === alert.view);
      if (view) await bindAlert(connection, name, alert, view, issues);
    }
  } finally {
    await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(PROBE)}`);
  }
  if (issues.length > 0) throw new ConfigError(issues, loaded.file ? { file: loaded.file } : {});
  return bound;
}

async function tryDescribe(connection: DuckDBConnection, sql: string): Promise<ColumnType[] | string> {
  try {
    return await describeQuery(connection, sql);
  } catch (error) {
    return duckDbMessage(error);
  }
}

async function bindView(connection: DuckDBConnection, view: CompiledView, issues: ConfigIssue[]): Promise<BoundView | undefined> {
  const at = `views.${view.definition.name}`;
  const source = quoteIdent(PROBE);
  const before = issues.length;
  if (view.definition.filter) {
    const filter = await tryDescribe(connection, `SELECT (${view.definition.filter}) AS f FROM ${source}`);
    if (typeof filter === 'string') issues.push({ path: `${at}.filter`, message: filter });
    else if (filter[0]?.type !== 'BOOLEAN') issues.push({ path: `${at}.filter`, message: `must be a boolean expression, but it is ${filter[0]?.type}` });
  }
  for (const measure of view.definition.measures) {
    const partials = view.stateColumns.filter((s) => s.measure === measure.name).map((s) => s.partial);
    const result = await tryDescribe(connection, `SELECT ${partials.join(', ')} FROM ${source}`);
    if (typeof result === 'string') {
      issues.push({ path: `${at}.measures.${measure.name}`, message: `cannot compute ${measure.expression}: ${result}` });
    }
  }
  if (issues.length > before) return undefined;
  const partial = view.partialSql(source);
  const stateColumns = await tryDescribe(connection, partial);
  if (typeof stateColumns === 'string') {
    issues.push({ path: at, message: stateColumns });
    return undefined;
  }
  const outputColumns = await tryDescribe(connection, view.mergeFinalizeSql(`(${partial})`));
  if (typeof outputColumns === 'string') {
    issues.push({ path: at, message: outputColumns });
    return undefined;
  }
  return { view, stateColumns, outputColumns };
}

async function bindAlert(
  connection: DuckDBConnection,
  name: string,
  alert: LoadedConfig['config']['alerts'][string],
  bound: BoundView,
  issues: ConfigIssue[],
): Promise<void> {
  const at = `alerts.${name}`;
  const finalized = `(${bound.view.mergeFinalizeSql(`(${bound.view.partialSql(quoteIdent(PROBE))})`)})`;
  const checks: [string, string | undefined][] = [
    ['where', alert.where],
    ['condition', alert.condition],
    ['clear', alert.clear],
  ];
  for (const [key, expression] of checks) {
    if (expression === undefined) continue;
    const result = await tryDescribe(connection, `SELECT (${expression}) AS c FROM ${finalized} AS v`);
    if (typeof result === 'string') issues.push({ path: `${at}.${key}`, message: result });
    else if (result[0]?.type !== 'BOOLEAN') issues.push({ path: `${at}.${key}`, message: `must be a boolean expression over the view's columns, but it is ${result[0]?.type}` });
  }
}
