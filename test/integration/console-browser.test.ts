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
import { layoutProblems } from './console-layout-check.ts';

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
  /** What status says of `events`; tests change it. */
  events: { tailRows: number; maxTailRows: number; maxRecentRows?: number; lagging: boolean; lagRecords: number };
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
    FROM range(-1, 40) r(m), unnest([${pages}]) p(page), unnest([${countries}]) c(country)`);
  // A stand-in for the serving layer's rollup macro over this table (the real one, over the views'
  // state, is tested in serving-rollups.test.ts): avg_latency weighted by views, as its state would.
  await connection.run(`
    CREATE MACRO rollup_page_traffic(dimensions := NULL, length := NULL, slide := NULL, since := NULL, until := NULL) AS TABLE
    SELECT CASE WHEN coalesce(length = 'all', false) THEN CAST(since AS TIMESTAMP) ELSE window_start END AS window_start,
           CASE WHEN coalesce(length = 'all', false) THEN NULL ELSE window_start + INTERVAL 1 MINUTE END AS window_end,
           COLUMNS(c -> list_contains(coalesce(dimensions, ['page', 'country']), c) AND c IN ('page', 'country')),
           sum(views)::BIGINT AS views, sum(revenue) AS revenue, sum(avg_latency * views) / sum(views) AS avg_latency
    FROM page_traffic WHERE since IS NULL OR window_start >= CAST(since AS TIMESTAMP)
    GROUP BY ALL`);
  await connection.run(`CREATE TABLE revenue_by_country AS
    SELECT country, sum(revenue) AS revenue, count(*)::BIGINT AS orders FROM page_traffic GROUP BY ALL`);
  await connection.run(`CREATE TABLE alert_history AS SELECT * FROM (VALUES
    (now()::TIMESTAMP - INTERVAL 3 MINUTE, 'slow_checkout', '{"page":"/checkout","country":"DE"}', 'pending', '{"views":50,"avg_latency":612.5}'),
    (now()::TIMESTAMP - INTERVAL 2 MINUTE, 'slow_checkout', '{"page":"/checkout","country":"DE"}', 'firing', '{"views":54,"avg_latency":640.0}')
  ) t(recorded_at, alert, "key", state, "value")`);
  // Enough transitions that the history has to scroll.
  await connection.run(`INSERT INTO alert_history SELECT now()::TIMESTAMP - to_minutes(10 + i), 'slow_checkout',
    '{"page":"/checkout","country":"FR"}', CASE WHEN i % 2 = 0 THEN 'resolved' ELSE 'firing' END, '{"views":61,"avg_latency":' || (400 + i) || '}'
    FROM range(40) r(i)`);
}

async function describeView(connection: DuckDBConnection, name: string) {
  const reader = await connection.runAndReadAll(`DESCRIBE ${name}`);
  return reader.getRowObjectsJS().map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
}

async function startStandIn(instance: DuckDBInstance, connection: DuckDBConnection): Promise<StandIn> {
  const runner = new QueryRunner(instance, { timeoutMs: 5_000, maxRows: 1_000 });
  const alertState = { state: 'firing' };
  const statusRequests = { count: 0 };
  const events = { tailRows: 1_200, maxTailRows: 1_000_000, lagging: false, lagRecords: 0 };
  const views = [
    { name: 'page_traffic', window: '1m', windowMs: 60_000, columns: await describeView(connection, 'page_traffic'), dimensions: ['page', 'country'],
      measures: [{ name: 'views', aggregate: 'count', of: '*' }, { name: 'revenue', aggregate: 'sum', of: 'amount' }, { name: 'avg_latency', aggregate: 'avg', of: 'latency_ms' }],
      rollup: 'rollup_page_traffic', freshness: { newestEventMs: Date.now() - 1_500, lagRecords: 42 } },
    { name: 'revenue_by_country', window: null, windowMs: null, columns: await describeView(connection, 'revenue_by_country'), dimensions: ['country'],
      measures: [{ name: 'revenue', aggregate: 'sum', of: 'amount' }, { name: 'orders', aggregate: 'count', of: 'amount' }],
      rollup: 'rollup_revenue_by_country', freshness: {}, state: 'serving', backfill: { kind: 'changed', progress: 0.7, definitionsVersion: 5, sinceMs: Date.now() - 4_000 } },
    { name: 'checkouts', window: '5m', windowMs: 300_000, columns: [{ name: 'window_start', type: 'TIMESTAMP' }, { name: 'orders', type: 'BIGINT' }], dimensions: [],
      measures: [{ name: 'orders', aggregate: 'count', of: '*' }], rollup: 'rollup_checkouts', freshness: { batchVersion: null, realtimeUpdatedAtMs: null, ageMs: null },
      state: 'backfilling', backfill: { kind: 'added', progress: 0.424, definitionsVersion: 5, sinceMs: Date.now() - 4_000 } },
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
    rules: [{ name: 'slow_checkout', view: 'page_traffic', where: "page = '/checkout'", condition: 'avg_latency > 500', clear: 'avg_latency < 300',
      forMs: 10_000, severity: 'critical' },
      { name: 'no_traffic', view: 'page_traffic', where: null, condition: 'views < 1', clear: null, forMs: 0, severity: 'warning' }],
    instances: [
      { alert: 'slow_checkout', key: { page: '/checkout', country: 'DE' }, state: alertState.state, since: new Date(Date.now() - 120_000).toISOString(),
        value: { views: 54, revenue: 5505.22, avg_latency: 640, max_latency: 1206.6 } },
      ...COUNTRIES.slice(1).map((country, i) => ({ alert: 'slow_checkout', key: { page: '/checkout', country }, state: i % 2 ? 'pending' : 'firing',
        since: new Date(Date.now() - 30_000 * (i + 1)).toISOString(), value: { views: 60 + i, revenue: 6000.5 + i, avg_latency: 901.783333 + i, max_latency: 1200 + i } })),
    ],
  }));
  app.get('/v1/status', async () => {
    statusRequests.count++;
    return {
      isMaster: true, roles: ['speed', 'batch', 'serving', 'archiver'],
      batch: { version: 7, cuts: { '0': 120_000 }, ageMs: 23_000 },
      lag: { records: 42 }, freshness: { newestEventMs: Date.now() - 1_500 },
      rejected: { total: 3, byReason: { bad_json: 2, missing_timestamp: 1 } },
      events: { ...events },
      members: [{ id: 'node-1', roles: ['speed', 'batch', 'serving', 'archiver'], isMaster: true }],
    };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url, alertState, statusRequests, events };
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
    // Definitions being backfilled (issue 16): an added view's progress, a changed one's new definition.
    await page.locator('#views .backfill', { hasText: 'backfilling 42%: queries answer once its history is computed' }).waitFor();
    await page.locator('#views .backfill', { hasText: 'new definition backfilling 70%; the current one serves until then' }).waitFor();
    expect(await page.locator('#views .view', { hasText: 'checkouts' }).locator('.freshness').count()).toBe(0);
  });

  it('shows a badge while events lags the views, and the tail in the status, and drops the badge once complete', async () => {
    expect(await page.textContent('[data-field="events"]')).toBe('complete · tail 1,200 rows (limit 1,000,000)');
    expect(await page.locator('[data-badge="events-lagging"]').count()).toBe(0);
    Object.assign(standIn.events, { tailRows: 1_000_000, lagging: true, lagRecords: 12_345 });
    const badge = page.locator('#summary [data-badge="events-lagging"]');
    await badge.waitFor();
    expect(await badge.textContent()).toBe('events lagging 12,345 records');
    expect(await badge.getAttribute('title')).toContain('speed.maxEventsTail');
    expect(await page.textContent('[data-field="events"]')).toBe('lagging 12,345 records behind the views · tail 1,000,000 rows (limit 1,000,000)');
    await page.screenshot({ path: join(ARTIFACTS, 'console-events-lagging.png') });
    Object.assign(standIn.events, { tailRows: 3_000, lagging: false, lagRecords: 0 });
    await badge.waitFor({ state: 'detached' });
    expect(await page.textContent('[data-field="events"]')).toBe('complete · tail 3,000 rows (limit 1,000,000)');
    // A tail that keeps the newest archived events too (speed.recentEvents) says so.
    Object.assign(standIn.events, { maxRecentRows: 500_000 });
    await page.locator('[data-field="events"]', { hasText: 'complete · tail 3,000 rows (limit 1,000,000 not archived + 500,000 recent)' }).waitFor();
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

  it('draws the chart of a measure split by a dimension from the rollup, says what it shows and follows the pickers', async () => {
    await page.locator('#chart[data-series="4"]').waitFor(); // split by page, the first dimension
    expect(await page.inputValue('#chart-view')).toBe('page_traffic');
    expect(await page.$$eval('#chart-view option', (os) => os.map((o) => o.textContent))).toEqual(['page_traffic']);
    expect(Number(await page.getAttribute('#chart', 'data-points'))).toBeGreaterThanOrEqual(40);
    expect(await page.textContent('#chart-title')).toBe('views: count(*) per 1m window, by page');
    expect(await seriesPixels(page)).toBeGreaterThan(100);

    await page.selectOption('#chart-dimension', 'country');
    await page.locator('#chart[data-series="5"]').waitFor();
    await page.selectOption('#chart-measure', 'avg_latency');
    await page.locator('#chart-title', { hasText: 'avg_latency: avg(latency_ms) per 1m window, by country' }).waitFor();
    expect(await seriesPixels(page)).toBeGreaterThan(100);
    // Told apart by colour and marker: every other series has a hollow marker.
    const swatches = await page.$$eval('#chart-legend .legend-item', (items) => items.map((i) => [i.getAttribute('data-series'), i.querySelector('.swatch')!.className]));
    expect(swatches).toEqual([...COUNTRIES].sort().map((c, i) => [c, i % 2 ? 'swatch hollow' : 'swatch']));
    await page.locator('#chart').screenshot({ path: join(ARTIFACTS, 'console-chart.png') });
  });

  it('marks the window still filling, and shows the hovered window\'s values in the legend', async () => {
    // The table holds a window of the next minute: one window is still filling while the test runs.
    const filling = await connection.runAndReadAll("SELECT strftime(min(window_start), '%Y-%m-%dT%H:%M:%S.000Z') FROM page_traffic WHERE window_start + INTERVAL 1 MINUTE > now()::TIMESTAMP");
    const fillingStart = String(filling.getRowsJS()[0]![0]);
    await expect.poll(() => page.getAttribute('#chart', 'data-filling-start')).toBe(fillingStart);
    const band = await page.locator('#chart .filling-band').boundingBox();
    const plot = await page.locator('#chart .u-over').boundingBox();
    expect(band!.width).toBeGreaterThan(0);
    expect(band!.x).toBeGreaterThanOrEqual(plot!.x - 1);
    expect(band!.x + band!.width).toBeLessThanOrEqual(plot!.x + plot!.width + 1);
    expect(await page.locator('#chart .filling-label').textContent()).toBe('still filling');
    await page.click('#chart-values summary');
    await page.locator(`#chart-values tr[data-window-start="${fillingStart}"][data-filling="true"]`).waitFor();

    // Hovering the middle of the plot shows that window's values, the same as the values table's.
    await page.mouse.move(plot!.x + plot!.width / 2, plot!.y + plot!.height / 2);
    await page.locator('#chart-legend[data-hover="true"]').waitFor();
    const legend = await page.$eval('#chart-legend', (l) => ({
      start: l.getAttribute('data-window-start'),
      values: [...l.querySelectorAll('.legend-item')].map((i) => [i.getAttribute('data-series'), i.getAttribute('data-value')]),
    }));
    const row = await page.$$eval(`#chart-values tr[data-window-start="${legend.start}"] td[data-series]`, (tds) => tds.map((td) => [td.getAttribute('data-series'), td.getAttribute('data-value')]));
    expect(legend.values).toEqual(row);
    expect(legend.values.every(([, v]) => Number(v) > 0)).toBe(true);
    // A refresh (the live clock moves once one is done) keeps the hovered window in the legend.
    const liveBefore = await page.textContent('#live');
    await expect.poll(() => page.textContent('#live'), { timeout: 10_000 }).not.toBe(liveBefore);
    expect(await page.getAttribute('#chart-legend', 'data-hover')).toBe('true');
    expect(await page.getAttribute('#chart-legend', 'data-window-start')).toBe(legend.start);
    await page.mouse.move(0, 0);
    await page.locator('#chart-legend[data-hover="false"]').waitFor();
    await page.click('#chart-values summary');
  });

  it('shows the alerts as a table per rule with state in colour, key, value and since, and follows state changes by itself', async () => {
    const de = page.locator('#alerts tr[data-alert="slow_checkout"]', { has: page.locator('td[data-key="country"]', { hasText: /^DE$/ }) });
    await de.and(page.locator('[data-state="firing"]')).waitFor();
    // Polled: the console re-renders the table on each refresh, and a row replaced between the
    // lookup and the read has no computed style (it is detached).
    await expect.poll(() => de.locator('.state').evaluate((e) => getComputedStyle(e).color)).toBe('rgb(184, 71, 75)');
    const rule = page.locator('.alert-rule[data-rule="slow_checkout"]');
    expect(await rule.locator('thead th').allTextContents()).toEqual(['State', 'country', 'avg_latency', 'Since']); // page is pinned by the rule's where
    expect(await de.locator('td').allTextContents()).toEqual(['firing', 'DE', '640', '2 min ago']);
    expect(await rule.locator('.rule-head').textContent()).toContain('3 firing · 2 pending');
    expect(await rule.locator('.rule-condition').textContent()).toBe("page_traffic where page = '/checkout': avg_latency > 500, clears when avg_latency < 300, for 10 s");
    await page.locator('.alert-rule[data-rule="no_traffic"][data-state="inactive"]').waitFor();
    expect(await page.$$eval('.alert-rule', (rules) => rules.map((r) => r.getAttribute('data-rule')))).toEqual(['slow_checkout', 'no_traffic']);

    // The history scrolls: all 42 transitions are there, the newest first, the last one reachable.
    await page.locator('#alert-history tbody tr').nth(41).waitFor();
    expect(await page.textContent('#alert-history tbody tr')).toContain('firing');
    const history = page.locator('#alert-history');
    expect(await history.evaluate((e) => e.scrollHeight > e.clientHeight)).toBe(true);
    await page.locator('#alert-history tbody tr').nth(41).scrollIntoViewIfNeeded();
    expect(await page.locator('#alert-history tbody tr').nth(41).isVisible()).toBe(true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280); // fits 1280×800
    await page.screenshot({ path: join(ARTIFACTS, 'console-full.png'), fullPage: true });

    standIn.alertState.state = 'resolved';
    await de.and(page.locator('[data-state="resolved"]')).waitFor({ timeout: 10_000 });
    expect(await page.getAttribute('#live', 'data-state')).toBe('live');
    expect(pageErrors).toEqual([]);
  });

  it('holds its layout at 1400 and 800 px: no overlap, no text out of its panel, no word broken, no empty area under the chart', async () => {
    for (const width of [1400, 800]) {
      await page.setViewportSize({ width, height: 900 });
      await expect.poll(() => layoutProblems(page), { timeout: 10_000 }).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `console-stand-in-${width}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
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
