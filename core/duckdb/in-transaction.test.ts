import { describe, expect, it } from 'vitest';
import { inMemoryDuckDb } from '../../test/harness/in-memory-duckdb.ts';
import { inTransaction } from './in-transaction.ts';

const db = inMemoryDuckDb();

/** The rows of `t` as another connection on the same database sees them. */
async function seenByOther(): Promise<number[]> {
  const other = await db.instance.connect();
  try {
    return ((await other.runAndReadAll('SELECT x FROM t ORDER BY x')).getRowsJS() as number[][]).map(([x]) => x!);
  } finally {
    other.closeSync();
  }
}

describe('inTransaction', () => {
  it('commits when the work resolves: another connection then sees every statement, and the result is returned', async () => {
    await db.connection.run('CREATE OR REPLACE TABLE t (x INTEGER)');
    const result = await inTransaction(db.connection, async () => {
      await db.connection.run('INSERT INTO t VALUES (1)');
      await db.connection.run('INSERT INTO t VALUES (2)');
      expect(await seenByOther()).toEqual([]);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await seenByOther()).toEqual([1, 2]);
  });

  it('rolls back every statement when the work throws, rethrows that error and leaves the connection usable', async () => {
    await db.connection.run('CREATE OR REPLACE TABLE t (x INTEGER)');
    await db.connection.run('INSERT INTO t VALUES (7)');
    const failure = new Error('work failed');
    await expect(
      inTransaction(db.connection, async () => {
        await db.connection.run('DELETE FROM t');
        await db.connection.run('INSERT INTO t VALUES (8)');
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await seenByOther()).toEqual([7]);
    // No transaction is left open: a new one can begin on the same connection.
    await inTransaction(db.connection, () => db.connection.run('INSERT INTO t VALUES (9)'));
    expect(await seenByOther()).toEqual([7, 9]);
  });

  it('rethrows the error of a failed statement, not that of the rollback', async () => {
    await db.connection.run('CREATE OR REPLACE TABLE t (x INTEGER PRIMARY KEY)');
    await db.connection.run('INSERT INTO t VALUES (1)');
    await expect(inTransaction(db.connection, () => db.connection.run('INSERT INTO t VALUES (1)'))).rejects.toThrow(/constraint/i);
    expect(await seenByOther()).toEqual([1]);
  });
});
