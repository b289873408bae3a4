const REWRITE_TEMP = 'temp.main.speed_rewrite';

/**
 * Statements that replace the rows of `table` with the result of `select` (which may read
 * `table` itself) by building the table anew: DROP, `createTableSql`, INSERT. Deleting rows
 * instead holds their memory until a checkpoint, which DuckDB (1.5) takes in an in-memory
 * database only inside the commit that crosses `checkpoint_threshold` (16 MiB of changes) since
 * the last. Run inside a transaction: readers then see the old table or the new one (DuckDB's
 * catalog is versioned like its data).
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

/** The table `keepRowsSql` builds, renamed to the table it replaces. */
const KEPT_TABLE = 'speed_rewrite_kept';

/**
 * Statements that keep only the rows of `table` matching `condition`, as `rewriteTableSql` does
 * but copying the rows once: they go into a new table of the same columns (`SELECT *` keeps their
 * types), which then takes the table's name. For tables without constraints or defaults (the
 * speed layer's: realtime state, rejected records, the events tail; the serving layer's
 * materialized views), and in the table's schema.
 * Run inside a transaction.
 */
export function keepRowsSql(table: string, condition: string): string {
  return [`CREATE OR REPLACE TABLE ${KEPT_TABLE} AS SELECT * FROM ${table} WHERE ${condition}`, `DROP TABLE ${table}`, `ALTER TABLE ${KEPT_TABLE} RENAME TO ${table}`].join(';\n');
}
