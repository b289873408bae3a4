import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterEach, describe, expect, it } from 'vitest';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { lockDownDatabase } from './lock-down-database.ts';

const cleanup: (() => void)[] = [];
afterEach(() => cleanup.splice(0).forEach((f) => f()));

async function database(): Promise<{ storageDir: string; admin: DuckDBConnection; instance: DuckDBInstance }> {
  const storageDir = mkdtempSync(join(tmpdir(), 'lambda-lockdown-'));
  const instance = await DuckDBInstance.create(':memory:');
  const admin = await instance.connect();
  cleanup.push(() => {
    admin.closeSync();
    instance.closeSync();
    rmSync(storageDir, { recursive: true, force: true });
  });
  mkdirSync(join(storageDir, 'master'));
  await admin.run(`COPY (SELECT range AS x FROM range(10)) TO ${quoteLiteral(join(storageDir, 'master', 'a.parquet'))} (FORMAT parquet)`);
  await admin.run(`CREATE VIEW events AS SELECT * FROM read_parquet(${quoteLiteral(join(storageDir, 'master', '*.parquet'))})`);
  return { storageDir, admin, instance };
}

async function failure(connection: DuckDBConnection, sql: string): Promise<string> {
  try {
    await connection.run(sql);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`expected ${sql} to fail`);
}

describe('lockDownDatabase', () => {
  it('keeps views over Parquet in the allowed directory working, new files included', async () => {
    const { storageDir, admin, instance } = await database();
    await lockDownDatabase(admin, { allowedDirectories: [storageDir], memoryLimit: '256MB' });
    const user = await instance.connect();
    expect((await user.runAndReadAll('SELECT count(*)::INT FROM events')).getRowsJS()).toEqual([[10]]);
    // The engine may still write inside the allowed directory (a new segment) and build tables.
    await admin.run(`COPY (SELECT 99 AS x) TO ${quoteLiteral(join(storageDir, 'master', 'b.parquet'))} (FORMAT parquet)`);
    await admin.run(`CREATE TABLE batch AS SELECT * FROM read_parquet(${quoteLiteral(join(storageDir, 'master', 'b.parquet'))})`);
    expect((await user.runAndReadAll('SELECT count(*)::INT FROM events')).getRowsJS()).toEqual([[11]]);
    user.closeSync();
  });

  it('refuses files, network and extensions outside the allowed directories, on every connection', async () => {
    const { storageDir, admin, instance } = await database();
    const before = await instance.connect();
    await lockDownDatabase(admin, { allowedDirectories: [storageDir], memoryLimit: '256MB' });
    const after = await instance.connect();
    for (const connection of [before, after, admin]) {
      expect(await failure(connection, "SELECT * FROM read_csv('/etc/passwd')")).toMatch(/^Permission Error: Cannot access file "\/etc\/passwd"/);
      expect(await failure(connection, `COPY (SELECT 1) TO ${quoteLiteral(join(tmpdir(), 'lambda-lockdown-out.csv'))}`)).toMatch(/^Permission Error/);
      expect(await failure(connection, "ATTACH '/tmp/lambda-lockdown.duckdb'")).toMatch(/^Permission Error/);
      expect(await failure(connection, "SELECT * FROM read_parquet('https://127.0.0.1:9/x.parquet')")).toMatch(/^Permission Error/);
      expect(await failure(connection, 'LOAD httpfs')).toMatch(/^Permission Error/);
      expect(await failure(connection, "SELECT getenv('HOME')")).toMatch(/getenv does not exist/);
    }
    before.closeSync();
    after.closeSync();
  });

  it('locks the configuration last, for the engine too', async () => {
    const { storageDir, admin } = await database();
    await lockDownDatabase(admin, { allowedDirectories: [storageDir], memoryLimit: '300MB', threads: 1 });
    const settings = (await admin.runAndReadAll(
      "SELECT current_setting('memory_limit'), current_setting('threads'), current_setting('enable_external_access'), current_setting('lock_configuration')",
    )).getRowsJS();
    expect(settings).toEqual([[expect.stringMatching(/^28\d\.\d MiB$/), 1n, false, true]]);
    for (const sql of ["SET memory_limit = '10GB'", 'SET enable_external_access = true', 'SET lock_configuration = false', 'RESET threads', 'PRAGMA threads = 8']) {
      expect(await failure(admin, sql)).toMatch(/the configuration has been locked/);
    }
  });

  it('must set allowed_directories before disabling external access (why the order is fixed)', async () => {
    const { storageDir, admin } = await database();
    await admin.run('SET enable_external_access = false');
    expect(await failure(admin, `SET allowed_directories = [${quoteLiteral(storageDir)}]`)).toMatch(
      /Cannot change allowed_directories when enable_external_access is disabled/,
    );
  });

  it('does not stop a COPY into the allowed directory: that is the statement guard’s job', async () => {
    const { storageDir, admin } = await database();
    await lockDownDatabase(admin, { allowedDirectories: [storageDir], memoryLimit: '256MB' });
    await admin.run(`COPY (SELECT 1) TO ${quoteLiteral(join(storageDir, 'inside.csv'))}`);
    expect(existsSync(join(storageDir, 'inside.csv'))).toBe(true);
  });
});
