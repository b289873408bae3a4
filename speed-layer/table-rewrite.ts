const REWRITE_TEMP = 'temp.main.speed_rewrite';

/**
 * Statements that replace the rows of `table` with the result of `select` (which may read
 * `table` itself) by building the table anew: DROP, `createTableSql`, INSERT. Deleting rows
 * instead would leak: DuckDB gives the memory of deleted rows back only at a checkpoint, which an
 * in-memory database never takes by itself. Run inside a transaction: readers then see the old
 * table or the new one (DuckDB's catalog is versioned like its data).
 */
export function rewriteTableSql(table: string, createTableSql: string, select: string): string {
  return [
    `CREATE OR REPLACE TEMP TABLE speed_rewrite AS ${select}`,
    `DROP TABLE ${table}`,
    createTableSql,
    `INSERT INTO ${table} BY NAME SELECT * FROM ${REWRITE_TEMP}`,
    `DROP TABLE ${REWRITE_TEMP}`,
  ].join(';\n');
}
