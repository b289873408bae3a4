import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryError } from '../../core/errors/index.ts';
import { lockDownDatabase } from './lock-down-database.ts';
import { prepareReadOnlyStatement } from './read-only-statement.ts';

let instance: DuckDBInstance;
let connection: DuckDBConnection;
let storageDir: string;
beforeAll(async () => {
  storageDir = mkdtempSync(join(tmpdir(), 'lambda-guard-'));
  instance = await DuckDBInstance.create(':memory:');
  connection = await instance.connect();
  await connection.run('CREATE TABLE t AS SELECT range AS a FROM range(3)');
  await lockDownDatabase(connection, { allowedDirectories: [storageDir], memoryLimit: '256MB' });
});
afterAll(() => {
  connection?.closeSync();
  instance?.closeSync();
  rmSync(storageDir, { recursive: true, force: true });
});

async function kindOf(sql: string): Promise<string> {
  try {
    (await prepareReadOnlyStatement(connection, sql)).destroySync();
    return 'ok';
  } catch (error) {
    if (error instanceof QueryError) return error.kind;
    throw error;
  }
}

describe('prepareReadOnlyStatement', () => {
  it.each([
    'SELECT 1', 'select * from t', 'FROM t', 'WITH x AS (SELECT 1) SELECT * FROM x', 'DESCRIBE t', 'SHOW TABLES', 'SUMMARIZE t',
    'VALUES (1)', 'TABLE t', 'SELECT 1 UNION ALL SELECT 2', 'SELECT 1;', '/* c */ SELECT 1 -- c', 'UNPIVOT t ON a INTO NAME k VALUE v',
  ])('accepts the read-only statement %s', async (sql) => {
    expect(await kindOf(sql)).toBe('ok');
  });

  it.each([
    'INSERT INTO t VALUES (1)', 'UPDATE t SET a = 1', 'DELETE FROM t', 'CREATE TABLE u (a INT)', 'DROP TABLE t', 'ALTER TABLE t RENAME TO u',
    "COPY t TO '/tmp/x.csv'", "EXPORT DATABASE '/tmp/x'", "ATTACH ':memory:' AS m", 'DETACH memory', 'INSTALL httpfs', 'LOAD httpfs',
    "SET memory_limit = '1GB'", 'RESET threads', 'PRAGMA version', 'CALL pragma_version()', 'EXPLAIN SELECT 1', 'BEGIN',
    'CHECKPOINT', 'PREPARE p AS SELECT 1', 'SET VARIABLE v = 1', 'USE memory', 'SELECT 1; SELECT 2', 'PIVOT t ON a USING count(*)',
    'SELECT * FROM enable_profiling()', 'SELECT * FROM system.main.CHECKPOINT()', "SELECT write_log('x')", 'SELECT * FROM force_checkpoint()',
    "SELECT * FROM query('SELECT 1')", "WITH q AS (SELECT * FROM query_table('t')) SELECT * FROM q", 'SELECT list_transform([1], x -> setseed(0.5))',
    'SELECT * FROM arrow_scan(0, 0, 0)', "SELECT * FROM \"Enable_Logging\"()",
  ])('refuses %s', async (sql) => {
    expect(await kindOf(sql)).toBe('refused');
  });

  it.each(['', ' \n ', '-- only a comment', 'SELEC 1', 'SELECT nope FROM t', 'SELECT $1', 'SELECT * FROM missing'])('calls %j a bad request', async (sql) => {
    expect(await kindOf(sql)).toBe('bad_request');
  });

  it('checks the statement type before binding, which can act (EXPORT DATABASE creates its directory)', async () => {
    const target = join(storageDir, 'export');
    expect(await kindOf(`EXPORT DATABASE '${target}'`)).toBe('refused');
    expect(existsSync(target)).toBe(false);
  });

  it('leaves the connection usable after each refusal', async () => {
    await kindOf('DROP TABLE t');
    const prepared = await prepareReadOnlyStatement(connection, 'SELECT count(*)::INT FROM t');
    expect((await prepared.runAndReadAll()).getRowsJS()).toEqual([[3]]);
    prepared.destroySync();
  });
});
