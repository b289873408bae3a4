import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll } from 'vitest';

/** An in-memory DuckDB and one connection, valid inside the tests of the block that asked for it. */
export interface InMemoryDuckDb {
  readonly instance: DuckDBInstance;
  readonly connection: DuckDBConnection;
}

/**
 * Opens a real in-memory DuckDB before the tests of the enclosing block (or file) and closes it
 * after them. Call it at collection time; read `instance` and `connection` inside the tests.
 */
export function inMemoryDuckDb(): InMemoryDuckDb {
  let instance: DuckDBInstance | undefined;
  let connection: DuckDBConnection | undefined;
  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
  });
  afterAll(() => {
    connection?.closeSync();
    instance?.closeSync();
  });
  const opened = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the in-memory DuckDB is open only inside the tests of the block that asked for it');
    return value;
  };
  return {
    get instance() {
      return opened(instance);
    },
    get connection() {
      return opened(connection);
    },
  };
}
