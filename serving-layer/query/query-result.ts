/** A value as it appears in a JSON answer: what `JSON.stringify` writes without loss or throwing. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A result column: its name and DuckDB type (`BIGINT`, `TIMESTAMP`, `VARCHAR[]`…). */
export interface ResultColumn {
  readonly name: string;
  readonly type: string;
}

/** The answer to one query, already converted to JSON-safe values (see json-value.ts). */
export interface QueryResult {
  readonly columns: readonly ResultColumn[];
  readonly rows: readonly (readonly JsonValue[])[];
  /** True when the query produced more than `maxRows` rows; only the first `maxRows` are here. */
  readonly truncated: boolean;
  /**
   * True when `events` lacked accepted events the views held at some point of the query (the
   * speed layer's tail was full: speed.maxEventsTail); absent where no speed layer runs.
   */
  readonly eventsLagging?: boolean;
}

export interface QueryOptions {
  /** Cancels the query (e.g. the HTTP client went away); it then fails as a timeout. */
  readonly signal?: AbortSignal;
  /** At most the runner's configured timeout; a larger value is capped. */
  readonly timeoutMs?: number;
  /** At most the runner's configured row limit; a larger value is capped. */
  readonly maxRows?: number;
}

/** Runs one user query; the HTTP server and the alert evaluator receive this, not DuckDB. */
export type RunQuery = (sql: string, options?: QueryOptions) => Promise<QueryResult>;
