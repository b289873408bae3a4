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
 *
 * What a view binds to depends on its definition and the schema alone (its definitionHash), and
 * what an alert binds to on that and its own expressions, so those that bound once in this process
 * are not bound again: a definitions change binds only what it adds or changes, however many
 * nodes' layers follow it here (each bind is ~25 statements, some 100 ms beside a busy speed layer).
 * It installs the project's macros on `connection` first, unless told they are there.
 */
export async function bindViews(loaded: LoadedConfig, connection: DuckDBConnection, options: { macrosInstalled?: boolean } = {}): Promise<BoundView[]> {
  if (!options.macrosInstalled) await installSqlMacros(connection);
  const views = loaded.views.map((view) => ({ view, known: BOUND_VIEWS.get(view.definitionHash) }));
  const alerts = Object.entries(loaded.config.alerts).map(([name, alert]) => {
    const view = loaded.views.find((v) => v.definition.name === alert.view);
    return { name, alert, key: JSON.stringify([view?.definitionHash, alert.where, alert.condition, alert.clear]) };
  });
  if (views.every((v) => v.known) && alerts.every((a) => BOUND_ALERTS.has(a.key))) {
    return views.map(({ view, known }) => ({ view, ...known! }));
  }
  await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(PROBE)}`);
  await connection.run(eventTableDdl(PROBE, loaded.schema, { temp: true }));
  const issues: ConfigIssue[] = [];
  const bound: BoundView[] = [];
  try {
    for (const { view, known } of views) {
      const result = known ? { view, ...known } : await bindView(connection, view, issues);
      if (result) bound.push(result);
    }
    for (const { name, alert, key } of alerts) {
      if (BOUND_ALERTS.has(key)) continue;
      const view = bound.find((b) => b.view.definition.name === alert.view);
      if (view && (await bindAlert(connection, name, alert, view, issues))) remember(BOUND_ALERTS, key, true);
    }
  } finally {
    await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(PROBE)}`);
  }
  if (issues.length > 0) throw new ConfigError(issues, loaded.file ? { file: loaded.file } : {});
  for (const { view, stateColumns, outputColumns } of bound) remember(BOUND_VIEWS, view.definitionHash, { stateColumns, outputColumns });
  return bound;
}

type BindResult = Pick<BoundView, 'stateColumns' | 'outputColumns'>;

/** Views (by definitionHash) and alerts (by their view's hash and expressions) that bound without error here, newest last. */
const BOUND_VIEWS = new Map<string, BindResult>();
const BOUND_ALERTS = new Map<string, true>();
const MAX_REMEMBERED = 1_024;

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value!);
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
): Promise<boolean> {
  const at = `alerts.${name}`;
  const before = issues.length;
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
  return issues.length === before;
}
