import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryError } from '../../core/errors/index.ts';
import { QueryRunner } from './query-runner.ts';

const SLOW = 'SELECT count(*) FROM range(1000000) a, range(1000000) b';
let instance: DuckDBInstance;
let runner: QueryRunner;
beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
  const admin = await instance.connect();
  await admin.run('CREATE TABLE clicks (page VARCHAR, n INTEGER)');
  admin.closeSync();
  runner = new QueryRunner(instance, { timeoutMs: 1_000, maxRows: 100, poolSize: 2 });
});
afterAll(() => {
  runner?.close();
  instance?.closeSync();
});

async function rejection(promise: Promise<unknown>): Promise<QueryError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(QueryError);
    return error as QueryError;
  }
  throw new Error('expected the query to fail');
}

describe('QueryRunner', () => {
  it('answers columns with their DuckDB types and JSON-safe rows', async () => {
    const result = await runner.run("SELECT 1::BIGINT AS n, 'a' AS s, DATE '2026-11-21' AS d");
    expect(result).toEqual({
      columns: [{ name: 'n', type: 'BIGINT' }, { name: 's', type: 'VARCHAR' }, { name: 'd', type: 'DATE' }],
      rows: [[1, 'a', '2026-11-21']],
      truncated: false,
    });
  });

  it('interrupts a query at the timeout and keeps both connections usable', async () => {
    const started = Date.now();
    const errors = await Promise.all([rejection(runner.run(SLOW)), rejection(runner.run(SLOW)), rejection(runner.run(SLOW))]);
    expect(errors.map((e) => e.kind)).toEqual(['timeout', 'timeout', 'timeout']);
    expect(Date.now() - started).toBeLessThan(3_500);
    const results = await Promise.all([runner.run('SELECT 1 AS a'), runner.run('SELECT 2 AS a'), runner.run('SELECT 3 AS a')]);
    expect(results.map((r) => r.rows[0]![0])).toEqual([1, 2, 3]);
  });

  it('counts waiting for a connection against the timeout', async () => {
    const slow = [rejection(runner.run(SLOW)), rejection(runner.run(SLOW))];
    const waiting = await rejection(runner.run('SELECT 1', { timeoutMs: 100 }));
    expect(waiting.kind).toBe('timeout');
    await Promise.all(slow);
  });

  it('cancels when the caller aborts (a client that went away)', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await rejection(runner.run(SLOW, { signal: controller.signal }));
    expect(error.kind).toBe('timeout');
    expect(error.message).toContain('went away');
    expect((await runner.run('SELECT 5 AS a')).rows).toEqual([[5]]);
  });

  it('stops reading at maxRows and says the result is truncated', async () => {
    const result = await runner.run('SELECT range FROM range(1000000000)');
    expect(result.rows).toHaveLength(100);
    expect(result.truncated).toBe(true);
    expect((await runner.run('SELECT range FROM range(1000000000)', { maxRows: 3 })).rows).toEqual([[0], [1], [2]]);
    expect((await runner.run('SELECT range FROM range(100)')).truncated).toBe(false);
    expect((await runner.run('SELECT range FROM range(100)', { maxRows: 100_000 })).rows).toHaveLength(100);
  });

  it('answers GROUP BY correctly after rows arrive in a table first queried empty (no cached statements, DuckDB #23704)', async () => {
    const sql = 'SELECT page, sum(n)::INT AS n FROM clicks GROUP BY page ORDER BY page';
    expect((await runner.run(sql)).rows).toEqual([]);
    const admin = await instance.connect();
    await admin.run("INSERT INTO clicks SELECT 'p' || (range % 3), 1 FROM range(3000)");
    admin.closeSync();
    for (let i = 0; i < 4; i++) expect((await runner.run(sql)).rows).toEqual([['p0', 1000], ['p1', 1000], ['p2', 1000]]);
  });

  it('maps DuckDB errors to kinds', async () => {
    expect((await rejection(runner.run('SELECT nope'))).kind).toBe('bad_request');
    expect((await rejection(runner.run('DROP TABLE clicks'))).kind).toBe('refused');
    expect((await rejection(runner.run("SELECT 'x'::INT"))).message).toContain("Could not convert string 'x'");
  });

  it('sees one snapshot per query while another connection writes', async () => {
    const admin = await instance.connect();
    await admin.run('CREATE TABLE swap AS SELECT 1 AS v FROM range(5000)');
    const reading = runner.run('SELECT count(*)::INT AS n, min(v) AS lo, max(v) AS hi FROM swap, range(2)');
    await admin.run('BEGIN; DELETE FROM swap; INSERT INTO swap SELECT 2 FROM range(7000); COMMIT');
    const { rows } = await reading;
    expect([[10_000, 1, 1], [14_000, 2, 2]]).toContainEqual(rows[0]);
    admin.closeSync();
  });
});
