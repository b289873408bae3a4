import { LambdaError } from './lambda-error.ts';

export type QueryErrorKind = 'bad_request' | 'refused' | 'timeout' | 'internal';

/** A query that cannot be answered; `kind` maps to the HTTP status the serving layer returns. */
export class QueryError extends LambdaError {
  readonly kind: QueryErrorKind;

  constructor(kind: QueryErrorKind, message: string, options: { cause?: unknown; context?: Record<string, unknown> } = {}) {
    super(message, { ...options, retriable: kind === 'timeout' });
    this.kind = kind;
  }
}
