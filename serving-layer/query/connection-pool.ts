import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { QueryError } from '../../core/errors/index.ts';

interface Waiter {
  resolve(connection: DuckDBConnection): void;
  reject(error: unknown): void;
}

/**
 * At most `size` connections of one DuckDB instance, created on demand, handed out one query at
 * a time. Queries beyond `size` wait in FIFO order (an aborted waiter leaves the queue).
 *
 * A connection whose query did not stop after an interrupt is `discard`ed: it stops counting
 * against `size` at once, so the pool stays usable, and is closed when its query settles.
 * Each connection runs its native calls on a libuv worker thread; keep `size` below
 * UV_THREADPOOL_SIZE (default 4) so queries cannot starve the process's file I/O.
 */
export class ConnectionPool {
  private readonly idle: DuckDBConnection[] = [];
  private readonly waiters: Waiter[] = [];
  private live = 0;
  private closed = false;

  constructor(
    private readonly instance: DuckDBInstance,
    readonly size: number,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`pool size must be a positive integer, got ${size}`);
  }

  async acquire(signal?: AbortSignal): Promise<DuckDBConnection> {
    if (this.closed) throw new QueryError('internal', 'the query engine is shutting down');
    signal?.throwIfAborted();
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.live < this.size) return this.connect();
    return new Promise<DuckDBConnection>((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: (c) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(c);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  release(connection: DuckDBConnection): void {
    if (this.closed) {
      this.live -= 1;
      connection.closeSync();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(connection);
    else this.idle.push(connection);
  }

  /** Gives up a connection whose query is stuck; it is closed once `running` settles. */
  discard(connection: DuckDBConnection, running: Promise<unknown>): void {
    this.live -= 1;
    void running.then(
      () => connection.closeSync(),
      () => connection.closeSync(),
    );
    const waiter = this.waiters.shift();
    if (waiter) this.connect().then(waiter.resolve, waiter.reject);
  }

  /** Closes idle connections now and leased ones when released; waiting queries fail. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new QueryError('internal', 'the query engine is shutting down'));
    for (const connection of this.idle.splice(0)) {
      this.live -= 1;
      connection.closeSync();
    }
  }

  private async connect(): Promise<DuckDBConnection> {
    this.live += 1;
    try {
      return await this.instance.connect();
    } catch (error) {
      this.live -= 1;
      throw error;
    }
  }
}
