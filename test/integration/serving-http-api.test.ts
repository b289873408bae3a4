import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { LocalLog } from '../../core/source/local-log.ts';
import { createEventIngest } from '../../serving-layer/ingest/event-ingest.ts';
import {
  FIXTURE_STATUS,
  FIXTURE_VIEWS,
  postQuery,
  request,
  startServingFixture,
  type ServingFixture,
} from '../support/serving-fixture.ts';

// The serving API's routes and formats (DESIGN.md, "Interfaces"), over real HTTP and DuckDB.
let node: ServingFixture;
let log: LocalLog;
const scratch = mkdtempSync(join(tmpdir(), 'lambda-http-api-'));

beforeAll(async () => {
  const consoleDir = join(scratch, 'console');
  mkdirSync(consoleDir);
  writeFileSync(join(consoleDir, 'index.html'), '<!doctype html><title>lambda console</title>');
  writeFileSync(join(consoleDir, 'app.js'), 'console.log("hi")');
  log = await LocalLog.open(join(scratch, 'log'), { logger: createLogger('test', { level: 'fatal' }) });
  const schema = { timestampField: 'ts', fields: [{ name: 'ts', type: 'TIMESTAMP' as const }, { name: 'page', type: 'VARCHAR' as const }] };
  node = await startServingFixture({
    server: {
      alerts: async () => ({ alerts: [{ name: 'slow_checkout', state: 'firing' }] }),
      ingest: createEventIngest(log, schema),
      console: { rootDir: consoleDir },
    },
  });
});
afterAll(async () => {
  await node?.close();
  await log?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const TYPES_SQL = `SELECT
  42::BIGINT AS big, 9007199254740993::BIGINT AS huge_big, 170141183460469231731687303715884105727::HUGEINT AS hugeint,
  12.50::DECIMAL(10, 2) AS dec, 1.5::DOUBLE AS dbl, 'NaN'::DOUBLE AS nan, NULL::INTEGER AS nothing, true AS yes,
  TIMESTAMP '2026-11-21 09:00:01.250' AS ts, TIMESTAMP '2026-11-21 09:00:01.250123' AS ts_us, TIMESTAMPTZ '2026-11-21 10:00:00+01' AS tstz,
  DATE '2026-11-21' AS d, [1, 2, NULL] AS list, {'a': 1, 'b': [TIMESTAMP '2026-01-01']} AS struct, 'it''s "quoted", ok' AS text`;

describe('POST /v1/query', () => {
  it('answers columns with DuckDB types and rows of JSON-safe values', async () => {
    const answer = await postQuery(node.url, TYPES_SQL);
    expect(answer.status, answer.text).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    expect(answer.json.columns.map((c: { name: string; type: string }) => `${c.name} ${c.type}`)).toEqual([
      'big BIGINT', 'huge_big BIGINT', 'hugeint HUGEINT', 'dec DECIMAL(10,2)', 'dbl DOUBLE', 'nan DOUBLE', 'nothing INTEGER', 'yes BOOLEAN',
      'ts TIMESTAMP', 'ts_us TIMESTAMP', 'tstz TIMESTAMP WITH TIME ZONE', 'd DATE', 'list INTEGER[]', 'struct STRUCT("a" INTEGER, "b" TIMESTAMP[])', 'text VARCHAR',
    ]);
    expect(answer.json.rows).toEqual([[
      42, '9007199254740993', '170141183460469231731687303715884105727', 12.5, 1.5, 'NaN', null, true,
      '2026-11-21T09:00:01.250Z', '2026-11-21T09:00:01.250123Z', '2026-11-21T09:00:00.000Z', '2026-11-21',
      [1, 2, null], { a: 1, b: ['2026-01-01T00:00:00.000Z'] }, 'it\'s "quoted", ok',
    ]]);
    expect(answer.json.truncated).toBe(false);
  });

  it('reads a view as a table named after it', async () => {
    const answer = await postQuery(node.url, "SELECT window_start, page, views FROM page_traffic WHERE page = '/p0' ORDER BY window_start");
    expect(answer.json.rows).toEqual([
      ['2026-11-21T09:00:00.000Z', '/p0', 20],
      ['2026-11-21T09:01:00.000Z', '/p0', 14],
    ]);
  });

  it('answers RFC 4180 CSV for Accept: text/csv', async () => {
    const answer = await postQuery(node.url, "SELECT 1 AS n, 'a,b' AS s, 'say \"hi\"' AS q, NULL AS missing, '' AS blank, [1, 2] AS l, 'two\nlines' AS m", { accept: 'text/csv' });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(answer.text).toBe('n,s,q,missing,blank,l,m\r\n1,"a,b","say ""hi""",,"","[1,2]","two\nlines"\r\n');
  });

  it('answers one JSON object per line for Accept: application/x-ndjson', async () => {
    const answer = await postQuery(node.url, 'SELECT range AS n, range * 2 AS n FROM range(3)', { accept: 'application/x-ndjson' });
    expect(answer.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    expect(answer.text.trimEnd().split('\n').map((line) => JSON.parse(line))).toEqual([
      { n: 0, n_1: 0 },
      { n: 1, n_1: 2 },
      { n: 2, n_1: 4 },
    ]);
  });

  it('negotiates the format with q-values and wildcards, falling back to JSON', async () => {
    expect((await postQuery(node.url, 'SELECT 1', { accept: 'text/csv;q=0.5, application/x-ndjson' })).headers.get('content-type')).toMatch(/ndjson/);
    expect((await postQuery(node.url, 'SELECT 1', { accept: 'text/*' })).headers.get('content-type')).toMatch(/text\/csv/);
    expect((await postQuery(node.url, 'SELECT 1', { accept: '*/*' })).headers.get('content-type')).toMatch(/application\/json/);
    expect((await postQuery(node.url, 'SELECT 1', { accept: 'text/html' })).headers.get('content-type')).toMatch(/application\/json/);
  });

  it('answers errors as JSON whatever format was asked for', async () => {
    const answer = await postQuery(node.url, 'SELECT nope', { accept: 'text/csv' });
    expect(answer.status).toBe(400);
    expect(answer.json.error).toContain('nope');
  });
});

describe('the other routes', () => {
  it('GET /v1/views lists the views the engine describes', async () => {
    const answer = await request(`${node.url}/v1/views`);
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ views: FIXTURE_VIEWS });
  });

  it('GET /v1/status answers the status the node describes', async () => {
    const answer = await request(`${node.url}/v1/status`);
    expect(answer.json).toEqual(FIXTURE_STATUS);
  });

  it('GET /v1/alerts answers the alert states', async () => {
    const answer = await request(`${node.url}/v1/alerts`);
    expect(answer.json).toEqual({ alerts: [{ name: 'slow_checkout', state: 'firing' }] });
  });

  it('GET /metrics answers Prometheus text with the query metrics', async () => {
    await postQuery(node.url, 'SELECT 1');
    await postQuery(node.url, 'DROP TABLE page_traffic');
    const answer = await request(`${node.url}/metrics`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(answer.text).toMatch(/lambda_query_total\{format="json"\} \d+/);
    expect(answer.text).toMatch(/lambda_query_errors_total\{kind="refused"\} [1-9]/);
    expect(answer.text).toMatch(/lambda_query_duration_seconds_bucket\{le="0.1",outcome="ok"\} [1-9]/);
    expect(answer.text).toMatch(/lambda_http_requests_total\{method="POST",route="\/v1\/query",status="200"\} [1-9]/);
  });

  it('POST /v1/events takes NDJSON, reporting bad lines by number', async () => {
    const body = '{"ts": "2026-11-21T09:00:00Z", "page": "/a"}\nnot json\n{"ts": 1763715600000, "page": "/b"}\n';
    const answer = await request(`${node.url}/v1/events`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toMatchObject({ accepted: 2, rejected: 1, errors: [{ line: 2, reason: 'invalid_json' }] });
    const single = await request(`${node.url}/v1/events`, { method: 'POST', body: '{"ts": "2026-11-21T09:00:00Z", "page": "/c"}', headers: { 'content-type': 'application/json' } });
    expect(single.json).toMatchObject({ accepted: 1 });
    const allBad = await request(`${node.url}/v1/events`, { method: 'POST', body: 'nope\n', headers: { 'content-type': 'text/plain' } });
    expect(allBad.status).toBe(400);
    expect(allBad.json.error).toContain('rejected');
    const empty = await request(`${node.url}/v1/events`, { method: 'POST', body: '' });
    expect(empty.status).toBe(400);
  });

  it('GET / serves the console and its files', async () => {
    const page = await request(`${node.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.text).toContain('lambda console');
    expect((await request(`${node.url}/app.js`)).status).toBe(200);
    const missing = await request(`${node.url}/nope.js`);
    expect(missing.status).toBe(404);
    expect(missing.json.error).toEqual(expect.any(String));
  });
});
