import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const LAMBDA = new URL('../lambda.mjs', import.meta.url).pathname;
const FOUNDATION = new URL('../../test/fixtures/foundation.yaml', import.meta.url).pathname;

async function lambda(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LAMBDA, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('lambda check', () => {
  it('prints runnable SQL for each view of a valid config and exits 0', async () => {
    const { code, stdout } = await lambda('check', '--config', FOUNDATION);
    expect(code).toBe(0);
    expect(stdout).toContain('valid (2 views, 1 alerts)');
    expect(stdout).toContain('== view page_traffic');
    expect(stdout).toContain('== view revenue_by_country');
    // The printed statements run as printed: macros, then partial over `events`, merge, finalize.
    const macros = stdout.split('\n').filter((line) => line.startsWith('CREATE OR REPLACE MACRO'));
    expect(macros.length).toBeGreaterThan(0);
    const partial = stdout.match(/-- partial: [^\n]*\n(SELECT[\s\S]*?);\n/)![1]!;
    const merge = stdout.match(/-- merge: [^\n]*\n(SELECT[\s\S]*?);\n/)![1]!;
    const finalize = stdout.match(/-- finalize: [^\n]*\n(SELECT[\s\S]*?);\n/)![1]!;
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    for (const m of macros) await c.run(m);
    await c.run('CREATE TABLE events (ts TIMESTAMP, user_id VARCHAR, page VARCHAR, country VARCHAR, latency_ms DOUBLE, amount DOUBLE)');
    await c.run(`INSERT INTO events VALUES
      ('2026-11-21 09:00:10', 'u1', '/a', 'DE', 100, 1.5), ('2026-11-21 09:00:50', 'u2', '/a', 'DE', 300, 2.5),
      ('2026-11-21 09:00:55', 'u1', '/a', 'DE', -1, 9), ('2026-11-21 09:01:00', 'u1', '/a', 'DE', 50, 1)`);
    await c.run(`CREATE TABLE page_traffic__partial AS ${partial}`);
    await c.run(`CREATE TABLE page_traffic__merged AS ${merge}`);
    const rows = (await c.runAndReadAll(`${finalize} ORDER BY window_start`)).getRowObjectsJS();
    expect(rows).toEqual([
      { window_start: new Date('2026-11-21T09:00:00Z'), page: '/a', country: 'DE', views: 2n, revenue: 4, avg_latency: 200, max_latency: 300, users: 2n },
      { window_start: new Date('2026-11-21T09:01:00Z'), page: '/a', country: 'DE', views: 1n, revenue: 1, avg_latency: 50, max_latency: 50, users: 1n },
    ].map((r) => ({ ...r, window_start: expect.anything() })));
    const starts = (await c.runAndReadAll(`SELECT strftime(window_start, '%H:%M:%S') AS s FROM (${finalize}) ORDER BY 1`)).getRowsJS();
    expect(starts).toEqual([['09:00:00'], ['09:01:00']]);
    db.closeSync();
  });

  it('exits non-zero and names the key path of each problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lambda-check-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, readFileSync(FOUNDATION, 'utf8').replace('max_latency: max(latency_ms)', 'p95: median(latency_ms)'));
    const { code, stdout, stderr } = await lambda('check', '--config', bad);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toContain('views.page_traffic.measures.p95: median() cannot be merged exactly');
  });

  it('exits non-zero for a missing file', async () => {
    const { code, stderr } = await lambda('check', '--config', '/nonexistent/lambda.yaml');
    expect(code).not.toBe(0);
    expect(stderr).toContain('cannot read /nonexistent/lambda.yaml');
  });
});
