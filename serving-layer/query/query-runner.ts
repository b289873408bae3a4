import type { DuckDBConnection, DuckDBInstance, DuckDBResult } from '@duckdb/node-api';
import { QueryError } from '../../core/errors/index.ts';
import { formatExactDurationMs } from '../../core/config/duration.ts';
import { ConnectionPool } from './connection-pool.ts';
import { queryErrorFromDuckDb } from './duckdb-query-error.ts';
import { jsonValueConverter } from './json-value.ts';
import type { JsonValue, QueryOptions, QueryResult, ResultColumn } from './query-result.ts';
import { prepareReadOnlyStatement } from './read-only-statement.ts';

export interface QueryRunnerOptions {
  /** serving.queryTimeout: from the request's arrival, waiting for a connection included. */
  readonly timeoutMs: number;
  /** serving.maxRows */
  readonly maxRows: number;
  /** Connections, i.e. queries running at once; the rest wait. Default 3. */
  readonly poolSize?: number;
  /** After interrupting a query, how long it may take to stop before its connection is replaced. */
  readonly interruptGraceMs?: number;
}

/**
 * Runs untrusted SQL against a DuckDB instance the engine has set up and locked down
 * (lock-down-database.ts): one read-only statement per call, prepared afresh, streamed until
 * `maxRows`, interrupted at `timeoutMs`. Every query is its own auto-commit transaction, so it
 * reads one consistent snapshot however long it streams.
 */
export class QueryRunner {
  private readonly pool: ConnectionPool;
  private readonly timeoutMs: number;
  private readonly maxRows: number;
  private readonly interruptGraceMs: number;

  constructor(instance: DuckDBInstance, options: QueryRunnerOptions) {
    this.pool = new ConnectionPool(instance, options.poolSize ?? 3);
    this.timeoutMs = options.timeoutMs;
    this.maxRows = options.maxRows;
    this.interruptGraceMs = options.interruptGraceMs ?? 2_000;
  }

  /** Rejects with QueryError only: bad_request, refused, timeout or internal. */
  async run(sql: string, options: QueryOptions = {}): Promise<QueryResult> {
    const timeoutMs = Math.min(options.timeoutMs ?? this.timeoutMs, this.timeoutMs);
    const maxRows = Math.min(options.maxRows ?? this.maxRows, this.maxRows);
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([deadline, options.signal]) : deadline;
    const aborted = () => abortError(deadline, timeoutMs);

    let connection: DuckDBConnection;
    try {
      connection = await this.pool.acquire(signal);
    } catch (error) {
      throw signal.aborted ? aborted() : queryErrorFromDuckDb(error);
    }
    const running = readResult(connection, sql, maxRows, signal);
    const interrupt = () => connection.interrupt();
    signal.addEventListener('abort', interrupt, { once: true });
    if (signal.aborted) interrupt();
    try {
      return await untilAborted(running, signal);
    } catch (error) {
      throw signal.aborted ? aborted() : queryErrorFromDuckDb(error);
    } finally {
      signal.removeEventListener('abort', interrupt);
      if (signal.aborted) void this.recover(connection, running);
      else this.pool.release(connection);
    }
  }

  close(): void {
    this.pool.close();
  }

  /** An interrupted query usually stops within milliseconds; one that does not loses its connection. */
  private async recover(connection: DuckDBConnection, running: Promise<unknown>): Promise<void> {
    const settled = running.then(
      () => true,
      () => true,
    );
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.interruptGraceMs)));
    const stopped = await Promise.race([settled, gaveUp]);
    clearTimeout(timer);
    if (stopped) this.pool.release(connection);
    else this.pool.discard(connection, running);
  }
}

async function readResult(connection: DuckDBConnection, sql: string, maxRows: number, signal: AbortSignal): Promise<QueryResult> {
  const prepared = await prepareReadOnlyStatement(connection, sql);
  try {
    signal.throwIfAborted();
    const result = await prepared.stream();
    const columns: ResultColumn[] = Array.from({ length: result.columnCount }, (_, i) => ({
      name: result.columnName(i),
      type: result.columnType(i).toString(),
    }));
    const rows: JsonValue[][] = [];
    let truncated = false;
    for (;;) {
      const chunk = await result.fetchChunk();
      // An interrupted stream can end without an error, so a short result is only trusted
      // while the query has not been aborted.
      signal.throwIfAborted();
      if (!chunk || chunk.rowCount === 0) break;
      const wanted = maxRows - rows.length;
      if (chunk.rowCount > wanted) {
        for (let i = 0; i < wanted; i++) rows.push(chunk.convertRowValues(i, jsonValueConverter) as JsonValue[]);
        truncated = true;
        break;
      }
      for (const row of chunk.convertRows(jsonValueConverter)) rows.push(row as JsonValue[]);
    }
    if (truncated) await closeStream(connection, result);
    return { columns, rows, truncated };
  } finally {
    prepared.destroySync();
  }
}

/**
 * Ends a stream that was read only in part, so that its transaction (and the snapshot that pins
 * old versions of swapped batch tables) closes now rather than at the connection's next query.
 */
async function closeStream(connection: DuckDBConnection, result: DuckDBResult): Promise<void> {
  connection.interrupt();
  try {
    while (((await result.fetchChunk())?.rowCount ?? 0) > 0);
  } catch {
    // "Interrupted!" is the expected end of an interrupted stream.
  }
}

function untilAborted<T>(running: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    running.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function abortError(deadline: AbortSignal, timeoutMs: number): QueryError {
  if (deadline.aborted) {
    return new QueryError('timeout', `the query ran longer than serving.queryTimeout (${formatExactDurationMs(timeoutMs)}) and was cancelled`);
  }
  return new QueryError('timeout', 'the query was cancelled because its client went away');
}
