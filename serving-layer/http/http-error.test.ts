import { describe, expect, it } from 'vitest';
import { CoordinationError, QueryError } from '../../core/errors/index.ts';
import { HttpError, toHttpError } from './http-error.ts';

describe('toHttpError', () => {
  it('maps each QueryError kind to its status, keeping the message', () => {
    expect(toHttpError(new QueryError('bad_request', 'no column x'))).toMatchObject({ statusCode: 400, message: 'no column x' });
    expect(toHttpError(new QueryError('refused', 'read-only'))).toMatchObject({ statusCode: 403, message: 'read-only' });
    expect(toHttpError(new QueryError('timeout', 'too slow'))).toMatchObject({ statusCode: 408, message: 'too slow' });
    expect(toHttpError(new QueryError('internal', 'broken'))).toMatchObject({ statusCode: 500, message: 'internal error: broken' });
  });

  it('keeps fastify client errors and HttpErrors', () => {
    const tooLarge = Object.assign(new Error('Request body is too large'), { statusCode: 413 });
    expect(toHttpError(tooLarge)).toMatchObject({ statusCode: 413, message: 'Request body is too large' });
    const own = new HttpError(404, 'nope');
    expect(toHttpError(own)).toBe(own);
  });

  it('answers 503 for retriable project errors and hides anything else behind a fixed 500', () => {
    expect(toHttpError(new CoordinationError('ZooKeeper connection lost', { retriable: true }))).toMatchObject({ statusCode: 503 });
    const bug = toHttpError(new TypeError("Cannot read properties of undefined (reading 'x')"));
    expect(bug).toMatchObject({ statusCode: 500, message: 'internal error; see the node log' });
    expect(toHttpError(Object.assign(new Error('x'), { statusCode: 502 })).statusCode).toBe(500);
  });
});
