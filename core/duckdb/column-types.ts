import { BIGINT, BOOLEAN, DATE, DOUBLE, INTEGER, TIMESTAMP, VARCHAR, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';
import type { FieldType } from '../config/config-schema.ts';

/** The DuckDB type of each field type, for data chunks built in JavaScript. */
export const DUCKDB_TYPES: Readonly<Record<FieldType, DuckDBType>> = { VARCHAR, BOOLEAN, INTEGER, BIGINT, DOUBLE, TIMESTAMP, DATE };

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
