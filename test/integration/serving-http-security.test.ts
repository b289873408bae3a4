import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postQuery, request, startServingFixture, type ServingFixture } from '../support/serving-fixture.ts';

// The SQL endpoint is read-only with no file, network or extension access (issue 5): every
// attack is answered 403 (refused) or 400 (not valid SQL here) with a JSON message, and the
// node answers a good query right after.
let node: ServingFixture;
beforeAll(async () => {
  node = await startServingFixture({ memoryLimit: '128MB' });
});
afterAll(async () => node?.close());

async function expectStillServing(): Promise<void> {
  const good = await postQuery(node.url, 'SELECT sum(views)::INTEGER AS n FROM page_traffic');
  expect(good.status).toBe(200);
  expect(good.json.rows).toEqual([[100]]);
}

const REFUSED: [string, string][] = [
  ['reads /etc/passwd with read_csv', "SELECT * FROM read_csv('/etc/passwd', sep = ':')"],
  ['reads /etc/passwd with read_text', "SELECT content FROM read_text('/etc/passwd')"],
  ['reads /etc/passwd with read_blob', "SELECT * FROM read_blob('/etc/passwd')"],
  ['lists files with glob', "SELECT * FROM glob('/etc/*')"],
  ['escapes the storage dir with ..', "SELECT * FROM read_parquet('STORAGE/../../../etc/passwd')"],
  ['reads over HTTP', "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')"],
  ['copies a table to a file', "COPY page_traffic TO '/tmp/lambda-stolen.csv'"],
  ['copies a table into the storage dir', "COPY page_traffic TO 'STORAGE/master/clicks/p0/evil.parquet' (FORMAT parquet)"],
  ['copies a query to a file', "COPY (SELECT 1) TO 'STORAGE/x.csv'"],
  ['attaches a database file', "ATTACH '/tmp/lambda-evil.duckdb' AS evil"],
  ['attaches an in-memory database', "ATTACH ':memory:' AS evil"],
  ['detaches the database', 'DETACH memory'],
  ['installs an extension', 'INSTALL httpfs'],
  ['loads an extension', 'LOAD httpfs'],
  ['raises the memory limit', "SET memory_limit = '100GB'"],
  ['enables external access', 'SET enable_external_access = true'],
  ['unlocks the configuration', 'SET lock_configuration = false'],
  ['resets a setting', 'RESET memory_limit'],
  ['sets a setting by PRAGMA', 'PRAGMA threads = 64'],
  ['runs even a read-only PRAGMA', 'PRAGMA version'],
  ['enables profiling by PRAGMA', 'PRAGMA enable_profiling'],
  ['sets a variable', 'SET VARIABLE x = 1'],
  ['switches the schema', 'USE memory'],
  ['creates a table', 'CREATE TABLE evil (a INTEGER)'],
  ['creates a table from a query', 'CREATE TABLE evil AS SELECT * FROM page_traffic'],
  ['creates a macro', 'CREATE MACRO evil(x) AS x'],
  ['inserts rows', "INSERT INTO page_traffic VALUES (now()::TIMESTAMP, '/evil', 1, 1)"],
  ['updates rows', 'UPDATE page_traffic SET views = 0'],
  ['deletes rows', 'DELETE FROM page_traffic'],
  ['drops a table', 'DROP TABLE page_traffic'],
  ['drops a view', 'DROP VIEW events'],
  ['alters a table', 'ALTER TABLE page_traffic ADD COLUMN evil INTEGER'],
  ['merges rows', 'MERGE INTO page_traffic USING (SELECT 1 AS v) s ON false WHEN NOT MATCHED THEN INSERT VALUES (NULL, NULL, 1, 1)'],
  ['exports the database', "EXPORT DATABASE '/tmp/lambda-export'"],
  ['exports into the storage dir', "EXPORT DATABASE 'STORAGE/export'"],
  ['calls a procedure', 'CALL pragma_version()'],
  ['checkpoints', 'CHECKPOINT'],
  ['vacuums', 'VACUUM'],
  ['opens a transaction', 'BEGIN TRANSACTION'],
  ['prepares a statement', 'PREPARE evil AS SELECT 1'],
  ['explains and so executes a write', 'EXPLAIN ANALYZE INSERT INTO page_traffic SELECT * FROM page_traffic'],
  ['explains and so executes a COPY', "EXPLAIN ANALYZE COPY page_traffic TO 'STORAGE/x.csv'"],
  ['updates extensions', 'UPDATE EXTENSIONS'],
  ['turns profiling on from a SELECT', 'SELECT * FROM enable_profiling()'],
  ['checkpoints from a SELECT', 'SELECT * FROM force_checkpoint()'],
  ['runs SQL from a string', "SELECT * FROM query('SELECT 1')"],
  ['reads memory by address', 'SELECT * FROM arrow_scan(0, 0, 0)'],
  ['sends two statements', 'SELECT 1; DROP TABLE page_traffic'],
  ['hides a second statement after a comment', 'SELECT 1 /* harmless */ ; -- and then\nDELETE FROM page_traffic'],
  ['sends two SELECTs', 'SELECT 1; SELECT 2'],
];

const BAD: [string, string][] = [
  ['reads environment variables', "SELECT getenv('HOME')"],
  ['uses an extension not loaded', "SELECT * FROM sqlite_scan('/tmp/x.db', 't')"],
  ['has a syntax error', 'SELEC 1'],
  ['names an unknown column', 'SELECT nope FROM page_traffic'],
  ['names an unknown table', 'SELECT * FROM nope'],
  ['is empty', '   '],
  ['has parameters', 'SELECT $1'],
  ['is only a comment', '-- nothing'],
  ['needs more memory than the limit', 'SELECT list(range) FROM range(200000000)'],
];

describe('the SQL endpoint refuses what a read-only analyst must not do', () => {
  it.each(REFUSED)('403 when a query %s', async (_what, sql) => {
    const answer = await postQuery(node.url, sql.replaceAll('STORAGE', node.storageDir));
    expect(answer.status, answer.text).toBe(403);
    expect(answer.json.error).toEqual(expect.any(String));
    expect(answer.json.error).not.toMatch(/\n\s+at /);
    await expectStillServing();
  });

  it.each(BAD)('400 when a query %s', async (_what, sql) => {
    const answer = await postQuery(node.url, sql);
    expect(answer.status, answer.text).toBe(400);
    expect(answer.json.error).toEqual(expect.any(String));
    await expectStillServing();
  });

  it('names the refused file and the reason', async () => {
    const answer = await postQuery(node.url, "SELECT * FROM read_csv('/etc/passwd')");
    expect(answer.json.error).toContain('/etc/passwd');
    expect(answer.json.error).toContain('disabled by configuration');
    const write = await postQuery(node.url, 'DELETE FROM page_traffic');
    expect(write.json.error).toMatch(/only SELECT queries are allowed.*read-only/);
    const two = await postQuery(node.url, 'SELECT 1; SELECT 2');
    expect(two.json.error).toContain('one statement per request');
  });

  it('left no trace of the attacks: data, catalog and files unchanged', async () => {
    const tables = await postQuery(node.url, "SELECT table_name FROM information_schema.tables ORDER BY 1");
    expect(tables.json.rows).toEqual([['events'], ['page_traffic']]);
    expect(readdirSync(join(node.storageDir, 'master', 'clicks', 'p0'))).toHaveLength(1);
    expect(existsSync(join(node.storageDir, 'x.csv'))).toBe(false);
    expect(existsSync(join(node.storageDir, 'export'))).toBe(false);
    expect(existsSync('/tmp/lambda-stolen.csv')).toBe(false);
    const setting = await postQuery(node.url, "SELECT current_setting('memory_limit') AS m, current_setting('enable_external_access') AS e");
    expect(setting.json.rows[0][1]).toBe(false);
    await expectStillServing();
  });
});

describe('what the locked-down database still allows', () => {
  it('reads the master dataset through the events view over Parquet in the storage dir', async () => {
    const answer = await postQuery(node.url, 'SELECT count(*) AS n, min(ts) AS first, max(_offset) AS last FROM events');
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.rows).toEqual([[100, '2026-11-21T09:00:00.000Z', 99]]);
  });

  it('reads Parquet under the storage dir directly', async () => {
    const glob = join(node.storageDir, 'master', 'clicks', 'p*', '*.parquet');
    const answer = await postQuery(node.url, `SELECT count(*) FROM read_parquet('${glob}')`);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.rows).toEqual([[100]]);
  });

  it('answers DESCRIBE, SHOW, SUMMARIZE, CTEs, FROM-first and read-only PRAGMAs', async () => {
    for (const sql of [
      'DESCRIBE page_traffic',
      'SHOW TABLES',
      'SUMMARIZE page_traffic',
      'WITH t AS (SELECT page, views FROM page_traffic) SELECT page, sum(views) FROM t GROUP BY page',
      'FROM page_traffic SELECT page LIMIT 1',
      "SELECT * FROM pragma_table_info('page_traffic')",
      'SELECT 1;',
    ]) {
      const answer = await postQuery(node.url, sql);
      expect(answer.status, `${sql}: ${answer.text}`).toBe(200);
    }
  });
});

describe('the HTTP layer itself', () => {
  it('answers 400 with a JSON message to a body that is not JSON or has no sql', async () => {
    for (const rawBody of ['{"sql": ', 'SELECT 1', '{}', '{"sql": 42}', '{"sql": ""}', '[]', 'null']) {
      const answer = await postQuery(node.url, '', { rawBody });
      expect(answer.status, rawBody).toBe(400);
      expect(answer.json.error, rawBody).toEqual(expect.any(String));
    }
    const empty = await postQuery(node.url, '', { rawBody: '' });
    expect(empty.status).toBe(400);
    await expectStillServing();
  });

  it('accepts the JSON body whatever its declared content type (curl -d)', async () => {
    const answer = await postQuery(node.url, '', { rawBody: '{"sql": "SELECT 7 AS n"}', contentType: 'application/x-www-form-urlencoded' });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json.rows).toEqual([[7]]);
  });

  it('answers 413 to a body over the limit, without a stack trace', async () => {
    const answer = await postQuery(node.url, `SELECT '${'x'.repeat(2 * 1024 * 1024)}'`);
    expect(answer.status).toBe(413);
    expect(answer.json.error).toEqual(expect.any(String));
    await expectStillServing();
  });

  it('answers 404 with JSON for unknown routes and methods, and for /v1/events without ingest', async () => {
    for (const [method, path] of [['GET', '/v1/nope'], ['DELETE', '/v1/query'], ['POST', '/v1/events'], ['GET', '/v1/alerts'], ['GET', '/']]) {
      const answer = await request(`${node.url}${path}`, { method });
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.json.error).toContain('no such endpoint');
    }
  });

  it('survives malformed requests: prototype poisoning, bad encodings, odd paths, raw garbage', async () => {
    const poisoned = await postQuery(node.url, '', { rawBody: '{"sql": "SELECT 1", "__proto__": {"x": 1}}' });
    expect(poisoned.status).toBe(400);
    const latin1 = await request(`${node.url}/v1/query`, { method: 'POST', body: Buffer.from([0x7b, 0x22, 0x73, 0x71, 0x6c, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), headers: { 'content-type': 'application/json' } });
    expect(latin1.status).toBeGreaterThanOrEqual(400);
    expect(latin1.status).toBeLessThan(500);
    expect((await request(`${node.url}/v1/%E0%A4%A`)).status).toBe(400);
    expect((await request(`${node.url}/v1/views?%zz=1`)).status).toBe(200);
    const { connect } = await import('node:net');
    await new Promise<void>((resolve) => {
      const socket = connect(node.server.address!.port, '127.0.0.1', () => socket.end('GARBAGE / HTTP/9.9\r\n\r\n'));
      socket.on('data', () => undefined);
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    await expectStillServing();
  });

  it('binds to 127.0.0.1 by default', () => {
    expect(node.server.address?.host).toBe('127.0.0.1');
  });
});

describe('with serving.token set', () => {
  const TOKEN = 'correct-horse-battery-staple';
  let secured: ServingFixture;
  beforeAll(async () => {
    secured = await startServingFixture({ token: TOKEN, server: { alerts: async () => ({ alerts: [] }) } });
  });
  afterAll(async () => secured?.close());

  const ROUTES: [string, string][] = [
    ['POST', '/v1/query'],
    ['GET', '/v1/views'],
    ['GET', '/v1/status'],
    ['GET', '/v1/alerts'],
    ['GET', '/metrics'],
    ['GET', '/'],
    ['GET', '/index.html'],
    ['GET', '/v1/nope'],
  ];

  it.each(ROUTES)('%s %s answers 401 without the token or with a wrong one', async (method, path) => {
    const body = method === 'POST' ? JSON.stringify({ sql: 'SELECT 1' }) : undefined;
    const headers = { 'content-type': 'application/json' };
    for (const authorization of [undefined, 'Bearer wrong-token-value', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, 'Bearer ']) {
      const answer = await request(`${secured.url}${path}`, { method, body, headers: { ...headers, ...(authorization ? { authorization } : {}) } });
      expect(answer.status, `${authorization}`).toBe(401);
      expect(answer.json.error).toEqual(expect.any(String));
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('serves every route with the right token', async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await postQuery(secured.url, 'SELECT 1', { token: TOKEN })).status).toBe(200);
    expect((await request(`${secured.url}/v1/views`, { headers: auth })).status).toBe(200);
    expect((await request(`${secured.url}/v1/status`, { headers: auth })).status).toBe(200);
    expect((await request(`${secured.url}/v1/alerts`, { headers: auth })).status).toBe(200);
    expect((await request(`${secured.url}/metrics`, { headers: auth })).status).toBe(200);
  });

  it('takes the token from ?access_token= once and then from the cookie it sets, for the console', async () => {
    const first = await fetch(`${secured.url}/v1/status?access_token=${TOKEN}`);
    expect(first.status).toBe(200);
    const cookie = first.headers.get('set-cookie')!;
    expect(cookie).toMatch(/lambda_token=.*HttpOnly.*SameSite=Strict/i);
    const next = await fetch(`${secured.url}/v1/views`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(next.status).toBe(200);
    expect((await fetch(`${secured.url}/v1/views?access_token=wrong`)).status).toBe(401);
  });
});
