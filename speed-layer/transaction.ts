import type { DuckDBConnection } from '@duckdb/node-api';

/**
 * Runs `work` in one DuckDB transaction on `connection`: committed when it resolves, rolled back
 * when it (or the commit) throws. Other connections on the same database see all of it or none.
 */
export async function inTransaction<T>(connection: DuckDBConnection, work: () => Promise<T>): Promise<T> {
  await connection.run('BEGIN TRANSACTION');
  try {
    const result = await work();
    await connection.run('COMMIT');
    return result;
  } catch (error) {
    // After a failed COMMIT DuckDB has already rolled back; the second ROLLBACK is then a no-op error.
    await connection.run('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
