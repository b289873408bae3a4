import { resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteLiteral } from '../../core/sql/identifiers.ts';

export interface LockDownOptions {
  /** Directories SQL may read (and the engine may still read after the lock), e.g. the storage dir. */
  readonly allowedDirectories: readonly string[];
  /** DuckDB size such as `1GB` (serving.memoryLimit). */
  readonly memoryLimit: string;
  readonly threads?: number;
  /** Where DuckDB spills when over the memory limit; DuckDB adds it to the allowed directories. */
  readonly tempDirectory?: string;
}

/**
 * Locks a DuckDB instance down for untrusted SQL. The settings are global: they bind every
 * connection of the instance, existing and future, the engine's own included. Measured on DuckDB
 * 1.5.6, and the order matters:
 *
 *  - `allowed_directories` must be set while external access is still enabled ("Cannot change
 *    allowed_directories when enable_external_access is disabled").
 *  - With `enable_external_access = false`, files are readable only under the allowed
 *    directories; read_csv('/etc/passwd'), glob('/etc/*'), ATTACH, COPY outside them, `http(s)://`
 *    paths and INSTALL/LOAD fail with "Permission Error", and getenv() disappears. Views created
 *    before the lock over read_parquet('<allowed dir>/…') keep working; the globs are expanded
 *    at query time, so new files under the directory are seen.
 *  - COPY … TO a file *inside* an allowed directory still works: refusing writes is the
 *    statement guard's job (read-only-statement.ts), not the configuration's.
 *  - `lock_configuration = true` comes last: after it every SET, RESET and setting PRAGMA fails
 *    ("the configuration has been locked"), for the engine's connections too, so an engine that
 *    needs other settings sets them before calling this.
 */
export async function lockDownDatabase(connection: DuckDBConnection, options: LockDownOptions): Promise<void> {
  const directories = options.allowedDirectories.map((dir) => quoteLiteral(resolve(dir)));
  const statements = [
    `SET memory_limit = ${quoteLiteral(options.memoryLimit)}`,
    ...(options.threads === undefined ? [] : [`SET threads = ${Math.max(1, Math.trunc(options.threads))}`]),
    ...(options.tempDirectory === undefined ? [] : [`SET temp_directory = ${quoteLiteral(resolve(options.tempDirectory))}`]),
    `SET allowed_directories = [${directories.join(', ')}]`,
    'SET enable_external_access = false',
    'SET autoinstall_known_extensions = false',
    'SET autoload_known_extensions = false',
    'SET allow_community_extensions = false',
    'SET lock_configuration = true',
  ];
  for (const statement of statements) await connection.run(statement);
}
