import type { DuckDBConnection } from '@duckdb/node-api';
import { DISTINCT_SKETCH_MACROS } from '../views/distinct-sketch.ts';
import { ROLLUP_MACROS } from '../views/view-rollup.ts';

/** Installs the project's SQL macros; every connection that runs compiled view SQL needs them. */
export async function installSqlMacros(connection: DuckDBConnection): Promise<void> {
  for (const statement of [...DISTINCT_SKETCH_MACROS, ...ROLLUP_MACROS]) await connection.run(statement);
}
