import type { DuckDBConnection } from '@duckdb/node-api';

export interface ColumnType {
  readonly name: string;
  readonly type: string;
}

/** The names and DuckDB types of a query's result columns, by binding it (nothing is executed). */
export async function describeQuery(connection: DuckDBConnection, sql: string): Promise<ColumnType[]> {
  const prepared = await connection.prepare(sql);
  try {
    return Array.from({ length: prepared.columnCount }, (_, i) => ({
      name: prepared.columnName(i),
      type: prepared.columnType(i).toString(),
    }));
  } finally {
    prepared.destroySync();
  }
}
