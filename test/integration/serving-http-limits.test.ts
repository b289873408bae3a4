import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postQuery, request, startServingFixture, type ServingFixture } from '../support/serving-fixture.ts';

// serving.queryTimeout, serving.maxRows and the connection pool, over real HTTP and DuckDB.
const TIMEOUT_MS = 600;
const MAX_ROWS = 1_000;
const SLOW = 'SELECT count(*) FROM range(1000000) a, range(1000000) b';

let node: ServingFixture;
beforeAll(async () => {
  node = await startServingFixture({ queryTimeoutMs: TIMEOUT_MS, maxRows: MAX_ROWS, poolSize: 3 });
});
afterAll(async () => node?.close());

describe('serving.queryTimeout', () => {
  it('answers 408 at the timeout, and the next query works', async () => {
    const started = Date.now();
    const answer = await postQuery(node.url, SLOW);
    const elapsedMs = Date.now() - started;
    expect(answer.status, answer.text).toBe(408);
    expect(answer.json.error).toContain('serving.queryTimeout');
    expect(elapsedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(elapsedMs).toBeLessThan(TIMEOUT_MS + 1_500);
    const next = await postQuery(node.url, 'SELECT 1 AS one');
    expect(next.status).toBe(200);
    expect(next.json.rows).toEqual([[1]]);
  });

  it('cancels a query that streams rows slowly past the timeout', async () => {
    const answer = await postQuery(node.url, 'SELECT range FROM range(100000000000) WHERE range % 50000000 = 0');
    expect(answer.status, answer.text).toBe(408);
    expect((await postQuery(node.url, 'SELECT 2')).status).toBe(200);
  });

  it('keeps every pool connection usable after more timeouts than the pool has connections', async () => {
    const answers = await Promise.all(Array.from({ length: 5 }, () => postQuery(node.url, SLOW)));
    expect(answers.map((a) => a.status)).toEqual([408, 408, 408, 408, 408]);
    const after = await Promise.all(Array.from({ length: 6 }, (_, i) => postQuery(node.url, `SELECT ${i} AS i`)));
    expect(after.map((a) => a.json.rows[0][0])).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('counts timeouts in lambda_query_errors_total', async () => {
    const metrics = await request(`${node.url}/metrics`);
    expect(metrics.text).toMatch(/lambda_query_errors_total\{kind="timeout"\} [1-9]/);
  });
});

describe('serving.maxRows', () => {
  it('returns the first maxRows rows and says the result was truncated', async () => {
    const answer = await postQuery(node.url, 'SELECT range AS n FROM range(100000) ORDER BY n');
    expect(answer.status).toBe(200);
    expect(answer.json.truncated).toBe(true);
    expect(answer.json.rows).toHaveLength(MAX_ROWS);
    expect(answer.json.rows[0]).toEqual([0]);
    expect(answer.json.rows.at(-1)).toEqual([MAX_ROWS - 1]);
    expect(answer.headers.get('x-lambda-truncated')).toBe('true');
  });

  it('is not truncated at exactly maxRows rows', async () => {
    const answer = await postQuery(node.url, `SELECT range FROM range(${MAX_ROWS})`);
    expect(answer.json.truncated).toBe(false);
    expect(answer.json.rows).toHaveLength(MAX_ROWS);
  });

  it('truncates CSV and NDJSON too, saying so in a header', async () => {
    const csv = await postQuery(node.url, 'SELECT range FROM range(5000)', { accept: 'text/csv' });
    expect(csv.text.trimEnd().split('\r\n')).toHaveLength(MAX_ROWS + 1);
    expect(csv.headers.get('x-lambda-truncated')).toBe('true');
    const ndjson = await postQuery(node.url, 'SELECT range FROM range(5000)', { accept: 'application/x-ndjson' });
    expect(ndjson.text.trimEnd().split('\n')).toHaveLength(MAX_ROWS);
  });
});

describe('concurrency', () => {
  // A timeout long enough that queueing on a loaded 2-core machine never reaches it.
  let busy: ServingFixture;
  beforeAll(async () => {
    busy = await startServingFixture({ queryTimeoutMs: 3_000, poolSize: 3 });
  });
  afterAll(async () => busy?.close());

  it('answers 50 queries sent at once, each correctly, through a pool of 3 connections', async () => {
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => postQuery(busy.url, `SELECT ${i} AS i, sum(views)::INTEGER AS views, count(*) AS n FROM page_traffic`)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    expect(answers.map((a) => a.json.rows[0])).toEqual(Array.from({ length: 50 }, (_, i) => [i, 100, 6]));
  });

  it('keeps answering good, bad and refused queries while slow ones hold part of the pool', async () => {
    const slow = [postQuery(busy.url, SLOW), postQuery(busy.url, SLOW)];
    const mixed = await Promise.all(
      Array.from({ length: 30 }, (_, i) => postQuery(busy.url, ['DROP TABLE page_traffic', 'SELEC', `SELECT ${i}`][i % 3]!).then((a) => a.status)),
    );
    expect(mixed).toEqual(Array.from({ length: 30 }, (_, i) => [403, 400, 200][i % 3]));
    expect((await Promise.all(slow)).map((a) => a.status)).toEqual([408, 408]);
  });
});

describe('a client that goes away', () => {
  let single: ServingFixture;
  beforeAll(async () => {
    single = await startServingFixture({ queryTimeoutMs: 20_000, poolSize: 1 });
  });
  afterAll(async () => single?.close());

  it('has its query cancelled, freeing the connection for the next client', async () => {
    const controller = new AbortController();
    const abandoned = fetch(`${single.url}/v1/query`, {
      method: 'POST',
      body: JSON.stringify({ sql: SLOW }),
      headers: { 'content-type': 'application/json' },
      signal: controller.signal,
    }).catch((error: Error) => error.name);
    setTimeout(() => controller.abort(), 200);
    expect(await abandoned).toBe('AbortError');
    const started = Date.now();
    const next = await postQuery(single.url, 'SELECT 3 AS n');
    expect(next.json.rows).toEqual([[3]]);
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
