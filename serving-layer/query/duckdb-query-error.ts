import { QueryError, type QueryErrorKind } from '../../core/errors/index.ts';

/**
 * DuckDB reports errors as `<Class> Error: <message>` with no structured code. The class decides
 * the kind: a mistake in the query (400), something the locked-down database will not do (403),
 * or a fault of the node (500). Interrupts are classified by the caller, which knows whether it
 * interrupted the query itself (timeout) or not.
 */
const KIND_BY_CLASS: Readonly<Record<string, QueryErrorKind>> = {
  parser: 'bad_request',
  syntax: 'bad_request',
  binder: 'bad_request',
  catalog: 'bad_request',
  conversion: 'bad_request',
  'invalid input': 'bad_request',
  'out of range': 'bad_request',
  'not implemented': 'bad_request',
  'type mismatch': 'bad_request',
  'invalid type': 'bad_request',
  constraint: 'bad_request',
  dependency: 'bad_request',
  sequence: 'bad_request',
  // The memory limit is a limit on the query, as Druid's "resource limit exceeded" is (400).
  'out of memory': 'bad_request',
  permission: 'refused',
  'missing extension': 'refused',
  'invalid configuration': 'refused',
};

const PREFIX = /^([A-Za-z ]+?) Error: /;

/** The first line of DuckDB's message, without the class prefix or the echoed SQL. */
export function duckDbErrorClass(error: unknown): { errorClass: string | undefined; message: string } {
  const text = error instanceof Error ? error.message : String(error);
  const firstLine = text.split('\n')[0]!.trim();
  const match = PREFIX.exec(firstLine);
  if (!match) return { errorClass: undefined, message: firstLine };
  return { errorClass: match[1]!.toLowerCase(), message: firstLine.slice(match[0].length).trim() };
}

export function queryErrorFromDuckDb(error: unknown): QueryError {
  if (error instanceof QueryError) return error;
  const { errorClass, message } = duckDbErrorClass(error);
  if (errorClass === undefined) {
    return new QueryError('internal', 'the query failed inside the serving node', { cause: error });
  }
  const kind = KIND_BY_CLASS[errorClass] ?? 'internal';
  if (errorClass === 'out of memory') {
    return new QueryError(kind, `the query needs more memory than serving.memoryLimit allows: ${message}`, { cause: error });
  }
  if (kind === 'refused') {
    return new QueryError(kind, `refused: ${message} (SQL may read this node's views and stored data, nothing else)`, { cause: error });
  }
  return new QueryError(kind, message, { cause: error });
}
