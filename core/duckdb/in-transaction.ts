import type { DuckDBConnection } from '@duckdb/node-api';

/**
 * Runs `work` in one DuckDB transaction on `connection`: committed when it resolves, rolled back
 * when it (or the commit) throws, and the error rethrown. Other connections on the same database
 * see all of it or none. The caller keeps other statements off `connection` meanwhile.
 */
export async function inTransaction<T>(connection: DuckDBConnection, work: () => Promise<T>): Promise<T> {
  await connection.run('BEGIN TRANSACTION');
  try {
    const result = await work();
    await connection.run('COMMIT');
    return result;
  } catch (error) {
    // Ignored: the work's error is the one to report. After a failed COMMIT DuckDB has already
    // rolled back and this ROLLBACK fails with "no transaction is active".
    await connection.run('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
