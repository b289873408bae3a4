import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueryError } from '../../core/errors/index.ts';
import { consoleAssets } from '../../serving-layer/console/console-assets.ts';
import { QueryRunner } from '../../serving-layer/query/query-runner.ts';

/*
 * The web console in Debian's chromium, against a STAND-IN SERVER written for this test: it serves
 * the console exactly as described by console-assets.ts, answers POST /v1/query by running the
 * console's SQL on a real DuckDB database through the serving layer's QueryRunner, and answers
 * /v1/views, /v1/alerts and /v1/status with fixed JSON. It demands a bearer token, so the token
 * prompt is exercised too. Once the serving node's HTTP server exists, this test should start
 * that node instead.
 */

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-test-token';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const PAGES = ['/', '/cart', '/checkout', '/search'];
const COUNTRIES = ['DE', 'FR', 'IN', 'US', 'BR'];
const SERIES_BLUE = [0x3b, 0x6e, 0xa5]; // the chart palette's first colour

interface StandIn {
  app: FastifyInstance;
  url: string;
  alertState: { state: string };
  statusRequests: { count: number };
}

async function fillDatabase(connection: DuckDBConnection): Promise<void> {
  await connection.run("SET TimeZone = 'UTC'");
  const pages = PAGES.map((p) => `'${p}'`).join(', ');
  const countries = COUNTRIES.map((c) => `'${c}'`).join(', ');
  await connection.run(`
    CREATE TABLE page_traffic AS
    SELECT date_trunc('minute', now()::TIMESTAMP) - to_minutes(m) AS window_start, page, country,
           ((10 + (m * 7 + ascii(country)) % 40) * length(page))::BIGINT AS views,
           round(((m * 13) % 50) * 1.5, 2)::DOUBLE AS revenue,
           (80 + (m * 31 + ascii(country)) % 200)::DOUBLE AS avg_latency
    FROM range(40) r(m), unnest([${pages}]) p(page), unnest([${countries}]) c(country)`);
  await connection.run(`CREATE TABLE revenue_by_country AS
    SELECT country, sum(revenue) AS revenue, count(*)::BIGINT AS orders FROM page_traffic GROUP BY ALL`);
  await connection.run(`CREATE TABLE alert_history AS SELECT * FROM (VALUES
    (now()::TIMESTAMP - INTERVAL 3 MINUTE, 'slow_checkout', '{"page":"/checkout"}', 'pending', '{"avg_latency":612.5}'),
    (now()::TIMESTAMP - INTERVAL 2 MINUTE, 'slow_checkout', '{"page":"/checkout"}', 'firing', '{"avg_latency":640.0}')
  ) t(recorded_at, alert, "key", state, "value")`);
}

async function describeView(connection: DuckDBConnection, name: string) {
  const reader = await connection.runAndReadAll(`DESCRIBE ${name}`);
  return reader.getRowObjectsJS().map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
}

async function startStandIn(instance: DuckDBInstance, connection: DuckDBConnection): Promise<StandIn> {
  const runner = new QueryRunner(instance, { timeoutMs: 5_000, maxRows: 1_000 });
  const alertState = { state: 'firing' };
  const statusRequests = { count: 0 };
  const views = [
    { name: 'page_traffic', window: '1m', columns: await describeView(connection, 'page_traffic'), dimensions: ['page', 'country'],
      measures: [{ name: 'views', kind: 'count' }, { name: 'revenue', kind: 'sum' }, { name: 'avg_latency', kind: 'avg' }],
      freshness: { newestEventMs: Date.now() - 1_500, lagRecords: 42 } },
    { name: 'revenue_by_country', window: null, columns: await describeView(connection, 'revenue_by_country'), dimensions: ['country'],
      measures: [{ name: 'revenue', kind: 'sum' }, { name: 'orders', kind: 'count' }], freshness: {} },
  ];
  const app = Fastify();
  app.addHook('onClose', async () => runner.close());
  await app.register(fastifyStatic, { root: consoleAssets.rootDir, prefix: '/' });
  app.get<{ Params: { file: string } }>('/vendor/:file', (request, reply) => {
    const path = consoleAssets.vendor[request.params.file];
    return path ? reply.sendFile(basename(path), dirname(path)) : reply.code(404).send({ error: 'no such vendor file' });
  });
  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/v1/') && request.headers.authorization !== `Bearer ${TOKEN}`) {
      return reply.code(401).send({ error: 'a bearer token is required' });
    }
  });
  app.post<{ Body: { sql?: unknown } }>('/v1/query', async (request, reply) => {
    try {
      return await runner.run(String(request.body?.sql ?? ''));
    } catch (error) {
      const kind = error instanceof QueryError ? error.kind : 'internal';
      const status = { bad_request: 400, refused: 403, timeout: 408, internal: 500 }[kind];
      return reply.code(status).send({ error: (error as Error).message });
    }
  });
  app.get('/v1/views', async () => views);
  app.get('/v1/alerts', async () => ({
    rules: [{ name: 'slow_checkout', view: 'page_traffic', condition: 'avg_latency > 500', severity: 'critical' },
      { name: 'no_traffic', view: 'page_traffic', condition: 'views < 1', severity: 'warning' }],
    instances: [{ alert: 'slow_checkout', key: { page: '/checkout' }, state: alertState.state, since: Date.now() - 120_000, value: { avg_latency: 640 } }],
  }));
  app.get('/v1/status', async () => {
    statusRequests.count++;
    return {
      isMaster: true, roles: ['speed', 'batch', 'serving', 'archiver'],
      batch: { version: 7, cuts: { '0': 120_000 }, ageMs: 23_000 },
      lag: { records: 42 }, freshness: { newestEventMs: Date.now() - 1_500 },
      rejected: { total: 3, byReason: { bad_json: 2, missing_timestamp: 1 } },
      members: [{ id: 'node-1', roles: ['speed', 'batch', 'serving', 'archiver'], isMaster: true }],
    };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url, alertState, statusRequests };
}

/** Pixels of the chart's canvas close to the first series colour: lines drawn, not just axes. */
function seriesPixels(page: Page): Promise<number> {
  return page.$eval('#chart canvas', (canvas, rgb) => {
    const context = (canvas as HTMLCanvasElement).getContext('2d')!;
    const { data } = context.getImageData(0, 0, (canvas as HTMLCanvasElement).width, (canvas as HTMLCanvasElement).height);
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i]! - rgb[0]!) + Math.abs(data[i + 1]! - rgb[1]!) + Math.abs(data[i + 2]! - rgb[2]!) < 30 && data[i + 3]! > 200) count++;
    }
    return count;
  }, SERIES_BLUE);
}

describe('web console in a real browser (stand-in server, real DuckDB)', () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;
  let standIn: StandIn;
  let userDataDir: string;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
    await mkdir(ARTIFACTS, { recursive: true });
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
    await fillDatabase(connection);
    standIn = await startStandIn(instance, connection);
    userDataDir = await mkdtemp(join(tmpdir(), 'console-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (msg) => {
      // The 401s that make the console ask for a token and the 400 of the deliberately failing
      // query are expected; nothing else may be logged.
      if (msg.type() === 'error' && !/status of 40[01]\b/.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  afterAll(async () => {
    await context?.close();
    await standIn?.app.close();
    connection?.closeSync();
    instance?.closeSync();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
  });

  it('asks once for the access token, then shows the views and the status', async () => {
    await page.goto(standIn.url);
    await page.locator('#token-dialog').waitFor({ state: 'visible' });
    await page.screenshot({ path: join(ARTIFACTS, 'console-token.png') });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-dialog button[type=submit]');
    await page.locator('#views .view-name', { hasText: 'page_traffic' }).waitFor();
    await page.locator('#summary', { hasText: 'batch v7' }).waitFor();
    expect(await page.locator('#token-dialog').isVisible()).toBe(false);
    expect(await page.evaluate(() => localStorage.getItem('lambda.console.token'))).toBe(TOKEN);
    expect(await page.textContent('[data-field="rejected"]')).toContain('bad_json=2');
    expect(await page.textContent('[data-field="node"]')).toContain('batch master');
  });

  it('runs a query typed in the editor with Ctrl+Enter and shows typed rows', async () => {
    await page.fill('#sql', 'SELECT page, sum(views) AS views FROM ');
    await page.focus('#sql');
    await page.keyboard.press('End');
    await page.locator('#views .view-name', { hasText: 'page_traffic' }).click();
    await page.keyboard.type(' GROUP BY ALL ORDER BY 2 DESC');
    expect(await page.inputValue('#sql')).toBe('SELECT page, sum(views) AS views FROM page_traffic GROUP BY ALL ORDER BY 2 DESC');
    await page.keyboard.press('Control+Enter');
    await page.locator('#result table tbody tr').nth(PAGES.length - 1).waitFor();

    const expected = await connection.runAndReadAll('SELECT page, sum(views)::BIGINT FROM page_traffic GROUP BY ALL ORDER BY 2 DESC');
    const shown = await page.$$eval('#result tbody tr', (rows) => rows.map((r) => [...r.children].map((td) => td.textContent)));
    expect(shown).toEqual(expected.getRowsJS().map(([p, v]) => [String(p), String(v)]));
    const headers = await page.$$eval('#result thead th', (ths) => ths.map((th) => th.textContent));
    expect(headers).toEqual(['pageVARCHAR', 'viewsHUGEINT']);
    expect(await page.textContent('#result-meta')).toMatch(/^4 rows/);
    await page.screenshot({ path: join(ARTIFACTS, 'console-overview.png') });
  });

  it('shows a failing query\'s error in place of the results, writes data as text, and flags truncated results', async () => {
    await page.fill('#sql', 'SELECT no_such_column FROM page_traffic');
    await page.click('#run');
    await page.locator('#result .error', { hasText: 'no_such_column' }).waitFor();
    expect(await page.textContent('#result-meta')).toContain('400');
    await page.screenshot({ path: join(ARTIFACTS, 'console-query-error.png') });

    const html = '<img src=x onerror="window.injected=1">';
    await page.fill('#sql', `SELECT '${html}' AS "<b>name</b>"`);
    await page.keyboard.press('Control+Enter');
    await page.locator('#result tbody td').waitFor();
    expect(await page.textContent('#result tbody td')).toBe(html);
    expect(await page.textContent('#result thead th span')).toBe('<b>name</b>');
    expect(await page.locator('#result img, #result b').count()).toBe(0);

    await page.fill('#sql', 'SELECT range AS n FROM range(5000)');
    await page.keyboard.press('Control+Enter');
    await page.locator('#truncated').waitFor();
    expect(await page.locator('#result tbody tr').count()).toBe(1_000);
  });

  it('draws the chart of a measure split by a dimension and follows the pickers', async () => {
    await page.locator('#chart[data-series="4"]').waitFor(); // split by page, the first dimension
    expect(await page.inputValue('#chart-view')).toBe('page_traffic');
    expect(await page.$$eval('#chart-view option', (os) => os.map((o) => o.textContent))).toEqual(['page_traffic']);
    expect(Number(await page.getAttribute('#chart', 'data-points'))).toBeGreaterThanOrEqual(40);
    expect(await seriesPixels(page)).toBeGreaterThan(100);

    await page.selectOption('#chart-dimension', 'country');
    await page.locator('#chart[data-series="5"]').waitFor();
    await page.selectOption('#chart-measure', 'avg_latency');
    await page.locator('#chart-meta', { hasText: 'avg(avg_latency) by country' }).waitFor();
    expect(await seriesPixels(page)).toBeGreaterThan(100);
    await page.locator('#chart').screenshot({ path: join(ARTIFACTS, 'console-chart.png') });
  });

  it('shows the alert state in colour with its history, and follows state changes by itself', async () => {
    const firing = page.locator('#alerts tr[data-alert="slow_checkout"][data-state="firing"]');
    await firing.waitFor();
    // Polled: the console re-renders the table on each refresh, and a row replaced between the
    // lookup and the read has no computed style (it is detached).
    await expect.poll(() => firing.locator('.state').evaluate((e) => getComputedStyle(e).color)).toBe('rgb(184, 71, 75)');
    expect(await firing.textContent()).toContain('page=/checkout');
    await page.locator('#alerts tr[data-alert="no_traffic"][data-state="inactive"]').waitFor();
    await page.locator('#alert-history tbody tr').nth(1).waitFor();
    expect(await page.textContent('#alert-history tbody tr')).toContain('firing');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280); // fits 1280×800
    await page.screenshot({ path: join(ARTIFACTS, 'console-full.png'), fullPage: true });

    standIn.alertState.state = 'resolved';
    await page.locator('#alerts tr[data-alert="slow_checkout"][data-state="resolved"]').waitFor({ timeout: 10_000 });
    expect(await page.getAttribute('#live', 'data-state')).toBe('live');
    expect(pageErrors).toEqual([]);
  });

  it('stops refreshing while the tab is hidden and resumes when it is shown again', async () => {
    const setHidden = (hidden: boolean) => page.evaluate((value) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => value });
      document.dispatchEvent(new Event('visibilitychange'));
    }, hidden);
    await setHidden(true);
    await page.locator('#live[data-state="paused"]').waitFor();
    await new Promise((resolve) => setTimeout(resolve, 500)); // a refresh in flight may still land
    const before = standIn.statusRequests.count;
    await new Promise((resolve) => setTimeout(resolve, 4_500));
    expect(standIn.statusRequests.count).toBe(before);

    await setHidden(false);
    await page.locator('#live[data-state="live"]').waitFor();
    expect(standIn.statusRequests.count).toBeGreaterThan(before);
    expect(pageErrors).toEqual([]);
  });
});
