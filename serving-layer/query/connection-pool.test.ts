import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionPool } from './connection-pool.ts';

let instance: DuckDBInstance;
beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
});
afterAll(() => instance?.closeSync());

describe('ConnectionPool', () => {
  it('creates at most size connections and hands released ones to waiters in order', async () => {
    const pool = new ConnectionPool(instance, 2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(a).not.toBe(b);
    const order: string[] = [];
    const third = pool.acquire().then((c) => (order.push('third'), c));
    const fourth = pool.acquire().then((c) => (order.push('fourth'), c));
    pool.release(b);
    expect(await third).toBe(b);
    pool.release(a);
    expect(await fourth).toBe(a);
    expect(order).toEqual(['third', 'fourth']);
    pool.release(a);
    pool.release(b);
    pool.close();
  });

  it('drops a waiter whose signal aborts', async () => {
    const pool = new ConnectionPool(instance, 1);
    const held = await pool.acquire();
    const controller = new AbortController();
    const aborted = pool.acquire(controller.signal);
    const next = pool.acquire();
    controller.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    pool.release(held);
    expect(await next).toBe(held);
    pool.release(held);
    pool.close();
  });

  it('replaces a discarded connection at once and closes it when its query settles', async () => {
    const pool = new ConnectionPool(instance, 1);
    const stuck = await pool.acquire();
    const waiting = pool.acquire();
    let finish!: () => void;
    const running = new Promise<void>((resolve) => (finish = resolve));
    pool.discard(stuck, running);
    const replacement = await waiting;
    expect(replacement).not.toBe(stuck);
    expect((await replacement.runAndReadAll('SELECT 1')).getRowsJS()).toEqual([[1]]);
    finish();
    await running;
    await new Promise((resolve) => setImmediate(resolve));
    await expect(stuck.run('SELECT 1')).rejects.toThrow();
    pool.release(replacement);
    pool.close();
  });

  it('fails waiters and closes idle connections on close', async () => {
    const pool = new ConnectionPool(instance, 1);
    const held: DuckDBConnection = await pool.acquire();
    const waiting = pool.acquire();
    pool.close();
    await expect(waiting).rejects.toThrow('shutting down');
    pool.release(held);
    await expect(held.run('SELECT 1')).rejects.toThrow();
    await expect(pool.acquire()).rejects.toThrow('shutting down');
  });
});
