import { ConflictError, LambdaError, QueryError, type QueryErrorKind } from '../../core/errors/index.ts';

/** The one error type the HTTP API answers with: a status and a message for `{"error": "…"}`. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const STATUS_BY_KIND: Readonly<Record<QueryErrorKind, number>> = {
  bad_request: 400,
  refused: 403,
  timeout: 408,
  internal: 500,
};

/**
 * Any error thrown while handling a request, as the client may see it. QueryError and HttpError
 * keep their messages, a ConflictError is a 409; fastify's own client errors (bad JSON, body too large) keep theirs; other
 * LambdaErrors, whose messages are written for users, are 503 when retrying can help (ZooKeeper
 * connection loss) and 500 otherwise; any other error is a 500 with a fixed message. Stack
 * traces only ever go to the log.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof QueryError) {
    const status = STATUS_BY_KIND[error.kind];
    return new HttpError(status, status === 500 ? `internal error: ${error.message}` : error.message);
  }
  // Conflicts with the current state (a stale definitions version, a view still backfilling).
  if (error instanceof ConflictError) return new HttpError(409, error.message);
  if (error instanceof LambdaError) {
    return error.retriable ? new HttpError(503, `unavailable, retry: ${error.message}`) : new HttpError(500, `internal error: ${error.message}`);
  }
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HttpError(status, (error as Error).message);
  }
  return new HttpError(500, 'internal error; see the node log');
}
