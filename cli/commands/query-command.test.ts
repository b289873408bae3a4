import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../test/harness/free-port.ts';
import { startServingFixture, type ServingFixture } from '../../test/support/serving-fixture.ts';
import { renderTable } from './query-command.ts';

const run = promisify(execFile);
const LAMBDA = new URL('../lambda.mjs', import.meta.url).pathname;
const TOKEN = 'cli-test-token-123';

async function lambda(args: string[], env: Record<string, string> = {}, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = run(process.execPath, [LAMBDA, ...args], { env: { ...process.env, LAMBDA_URL: '', LAMBDA_TOKEN: '', ...env } });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let node: ServingFixture;
beforeAll(async () => {
  node = await startServingFixture({ token: TOKEN, maxRows: 5 });
});
afterAll(async () => node?.close());

describe('lambda query', () => {
  it('prints an aligned table with numbers on the right, NULL spelled out and the row count', async () => {
    const sql = "SELECT page, sum(views)::INTEGER AS views, NULL AS note FROM page_traffic GROUP BY page ORDER BY page";
    const { code, stdout, stderr } = await lambda(['query', sql, '--url', node.url, '--token', TOKEN]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[1]).toMatch(/│ page +│ views │ note +│/);
    expect(lines.slice(3, 6)).toEqual([
      expect.stringMatching(/│ \/p0 +│ +34 │ NULL +│/),
      expect.stringMatching(/│ \/p1 +│ +33 │ NULL +│/),
      expect.stringMatching(/│ \/p2 +│ +33 │ NULL +│/),
    ]);
    expect(lines.at(-1)).toBe('(3 rows)');
    const widths = new Set(lines.slice(0, -1).map((line) => line.length));
    expect(widths.size).toBe(1);
  });

  it('prints JSON, CSV and NDJSON as the node writes them, with --url and --token from the environment or stdin for the query', async () => {
    const env = { LAMBDA_URL: node.url, LAMBDA_TOKEN: TOKEN };
    const [json, csv, ndjson, stdin] = await Promise.all([
      ...['json', 'csv', 'ndjson'].map((format) => lambda(['query', "SELECT 1 AS n, 'a,b' AS s", '--format', format], env)),
      lambda(['query', '-', '-f', 'csv'], env, 'SELECT 42 AS answer\n'),
    ]);
    expect(JSON.parse(json!.stdout)).toEqual({ columns: [{ name: 'n', type: 'INTEGER' }, { name: 's', type: 'VARCHAR' }], rows: [[1, 'a,b']], truncated: false });
    expect(csv!.stdout).toBe('n,s\r\n1,"a,b"\r\n');
    expect(ndjson!.stdout).toBe('{"n":1,"s":"a,b"}\n');
    expect(stdin!.stdout).toBe('answer\r\n42\r\n');
  });

  it("exits non-zero with the node's message: refused and bad SQL, no token, no node, unknown format", async () => {
    const auth = ['--url', node.url, '--token', TOKEN];
    const nobody = `http://127.0.0.1:${await freePort()}`;
    const [refused, bad, unauthorized, unreachable, badFormat] = await Promise.all([
      lambda(['query', 'DROP TABLE page_traffic', ...auth]),
      lambda(['query', 'SELECT nope', ...auth]),
      lambda(['query', 'SELECT 1', '--url', node.url]),
      lambda(['query', 'SELECT 1', '--url', nobody]),
      lambda(['query', 'SELECT 1', '--format', 'xml', '--url', nobody]),
    ]);
    for (const failed of [refused, bad, unauthorized, unreachable, badFormat]) {
      expect(failed!.code).not.toBe(0);
      expect(failed!.stdout).toBe('');
    }
    expect(refused!.stderr).toMatch(/^lambda: 403 from .*\/v1\/query: only SELECT queries are allowed/);
    expect(bad!.stderr).toMatch(/^lambda: 400 .*nope/);
    expect(unauthorized!.stderr).toMatch(/^lambda: 401 .*LAMBDA_TOKEN/);
    expect(unreachable!.stderr).toContain(`lambda: cannot reach the node at ${nobody} (ECONNREFUSED)`);
    expect(badFormat!.stderr).toContain('Allowed choices are table, json, csv, ndjson');
  });
});

describe('renderTable', () => {
  it('says when the result was truncated at serving.maxRows', () => {
    const text = renderTable({ columns: [{ name: 'n', type: 'BIGINT' }], rows: [[1], [22]], truncated: true });
    expect(text.split('\n')).toEqual(['┌────┐', '│  n │', '├────┤', '│  1 │', '│ 22 │', '└────┘', '(2 rows, truncated at serving.maxRows)', '']);
  });

  it('prints nested values as JSON and one row in the singular', () => {
    const text = renderTable({ columns: [{ name: 'tags', type: 'VARCHAR[]' }], rows: [[['a', 'b']]], truncated: false });
    expect(text).toContain('│ ["a","b"] │');
    expect(text).toContain('(1 row)');
  });
});
