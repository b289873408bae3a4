import { StatementType, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { QueryError } from '../../core/errors/index.ts';
import { DENIED_FUNCTIONS } from './denied-functions.ts';
import { queryErrorFromDuckDb } from './duckdb-query-error.ts';

const ONLY_SELECT =
  'only SELECT queries are allowed (DESCRIBE, SHOW, SUMMARIZE, VALUES and WITH too): the query endpoint is read-only, so DDL, DML, COPY, EXPORT, ATTACH, INSTALL, LOAD, SET, RESET, PRAGMA, CALL and EXPLAIN are refused';

/**
 * Prepares `sql` if DuckDB's own parser says it is exactly one SELECT, in three steps:
 *
 *  1. Parse only, with `json_serialize_sql`, which accepts SELECT statements alone and binds
 *     nothing. Checking the type *before* binding matters: binding can act (measured on DuckDB
 *     1.5.6: preparing `EXPORT DATABASE '<dir>'` creates the directory, and extracting
 *     `IMPORT DATABASE` reads files). EXPLAIN is refused too: `EXPLAIN ANALYZE` executes its
 *     statement, whatever that is. The same parse tree names every function the SELECT calls;
 *     those that act on the node are refused (denied-functions.ts).
 *  2. Extract: exactly one statement.
 *  3. Prepare (bind) and check the bound statement type is SELECT.
 *
 * The locked configuration (lock-down-database.ts) is the next line, refusing file, network and
 * extension access from inside a SELECT (`read_csv('/etc/passwd')`, `glob`).
 *
 * The caller owns the returned statement, runs it once and destroys it: a statement prepared
 * before rows are added can return wrong GROUP BY results when re-run (DuckDB #23704, #24182).
 */
export async function prepareReadOnlyStatement(connection: DuckDBConnection, sql: string): Promise<DuckDBPreparedStatement> {
  if (!ONE_SELECT_TEXTS.has(sql)) {
    await checkParsesToOneSelect(connection, sql);
    remember(sql);
  }
  let prepared: DuckDBPreparedStatement;
  try {
    const extracted = await connection.extractStatements(sql);
    if (extracted.count !== 1) throw new QueryError('refused', `send one statement per request; this request holds ${extracted.count}`);
    prepared = await extracted.prepare(0);
  } catch (error) {
    throw queryErrorFromDuckDb(error);
  }
  if (prepared.statementType !== StatementType.SELECT) {
    prepared.destroySync();
    throw new QueryError('refused', ONLY_SELECT);
  }
  if (prepared.parameterCount > 0) {
    prepared.destroySync();
    throw new QueryError('bad_request', 'the query has parameters ($1, ?); write the values into the SQL');
  }
  return prepared;
}

/**
 * Texts step 1 found to be one SELECT. The parser's verdict depends on the text alone, so it is
 * safe to remember (unlike prepared statements); dashboards repeat their queries, and this saves
 * them a round trip to DuckDB. Steps 2 and 3 still run every time.
 */
const ONE_SELECT_TEXTS = new Set<string>();
const MAX_REMEMBERED = 1_000;
const MAX_REMEMBERED_CHARS = 8_192;

function remember(sql: string): void {
  if (sql.length > MAX_REMEMBERED_CHARS) return;
  if (ONE_SELECT_TEXTS.size >= MAX_REMEMBERED) ONE_SELECT_TEXTS.delete(ONE_SELECT_TEXTS.values().next().value!);
  ONE_SELECT_TEXTS.add(sql);
}

interface SerializedSql {
  readonly error?: boolean;
  readonly error_type?: string;
  readonly error_message?: string;
  readonly statements?: readonly unknown[];
}

async function checkParsesToOneSelect(connection: DuckDBConnection, sql: string): Promise<void> {
  const parser = await connection.prepare('SELECT json_serialize_sql($1::VARCHAR)');
  let serialized: SerializedSql;
  const functions = new Set<string>();
  try {
    parser.bindVarchar(1, sql);
    const rows = (await parser.runAndReadAll()).getRowsJS();
    serialized = JSON.parse(String(rows[0]?.[0]), (key, value: unknown) => {
      if (key === 'function_name' && typeof value === 'string') functions.add(value.toLowerCase());
      return value;
    }) as SerializedSql;
  } finally {
    parser.destroySync();
  }
  if (serialized.error) {
    // "Only SELECT statements can be serialized to json!"
    if (serialized.error_message?.startsWith('Only SELECT')) throw new QueryError('refused', ONLY_SELECT);
    throw new QueryError('bad_request', serialized.error_message ?? 'the query does not parse');
  }
  const count = serialized.statements?.length ?? 0;
  if (count === 0) throw new QueryError('bad_request', 'the query holds no SQL statement; send one SELECT statement');
  if (count > 1) throw new QueryError('refused', `send one statement per request; this request holds ${count}`);
  for (const name of functions) {
    const reason = DENIED_FUNCTIONS.get(name);
    if (reason) throw new QueryError('refused', `${name}() is refused: it ${reason}, and the query endpoint is read-only`);
  }
}
