import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoGenerator } from '../../cli/demo/demo-generator.ts';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { layoutProblems } from './console-layout-check.ts';

/**
 * The console of the real single-node demo in Debian's chromium: the bundled demo config and
 * generator (with its /checkout latency spike on all the time, so the demo alert fires within
 * seconds), the real HTTP server, SQL engine and alerting. Screenshots go to test/artifacts/.
 */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const DEMO_CONFIG = fileURLToPath(new URL('../../cli/demo/demo-config.yaml', import.meta.url));

describe('web console of the real demo node in a browser', () => {
  let dir: string;
  let node: LambdaNode;
  let generator: { stop(): void };
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
    mkdirSync(ARTIFACTS, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'lambda-console-demo-'));
    const yaml = readFileSync(DEMO_CONFIG, 'utf8').replace('dir: ./data', `dir: ${JSON.stringify(join(dir, 'data'))}`).replace('port: 8080', 'port: 0');
    const logger = createLogger('test', { level: 'error' });
    node = await LambdaNode.start({ loaded: parseConfig(yaml), roles: [...ALL_ROLES], logger });
    generator = startDemoGenerator(node.localLog!, { eventsPerSecond: 300, logger, spikeEveryMs: 60_000, spikeForMs: 60_000 });
    context = await chromium.launchPersistentContext(join(dir, 'chromium'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 800 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageErrors.push(msg.text());
    });
  }, 60_000);

  afterAll(async () => {
    generator?.stop();
    await context?.close();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the views, runs a query, draws the chart and shows the demo alert firing', async () => {
    await page.goto(node.url!);
    await page.locator('#views .view-name', { hasText: 'page_traffic' }).waitFor();
    await page.locator('#summary', { hasText: 'master' }).waitFor();

    await page.fill('#sql', 'SELECT page, sum(views) AS views FROM page_traffic GROUP BY ALL ORDER BY page');
    await page.click('#run');
    await page.locator('#result table tbody tr').first().waitFor();
    const shown = await page.$$eval('#result tbody tr', (rows) => rows.map((r) => r.children[0]!.textContent));
    expect(shown).toEqual(['/', '/cart', '/checkout', '/product', '/search']);

    // The chart of the windowed view draws at least one series with points.
    await page.locator('#chart[data-series]').waitFor();
    expect(Number(await page.getAttribute('#chart', 'data-series'))).toBeGreaterThan(0);
    expect(Number(await page.getAttribute('#chart', 'data-points'))).toBeGreaterThan(0);

    // The demo alert fires: /checkout latency ~900 ms > 500 for longer than `for: 10s`.
    // One instance per (page, country): several fire.
    const firing = page.locator('#alerts tr[data-alert="slow_checkout"][data-state="firing"]').first();
    await firing.waitFor({ timeout: 60_000 });
    // page is pinned by the rule's where, so it is in the rule's condition line, not a column.
    expect(await page.textContent('.alert-rule[data-rule="slow_checkout"] .rule-condition')).toContain("page = '/checkout'");
    expect(await firing.locator('td[data-key="country"]').textContent()).toMatch(/^[A-Z]{2}$/);
    await page.locator('#alert-history tbody tr').first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'console-demo.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('holds its layout with the demo\'s data at 1400 and 800 px', async () => {
    for (const width of [1400, 800]) {
      await page.setViewportSize({ width, height: 900 });
      await expect.poll(() => layoutProblems(page), { timeout: 15_000 }).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `console-demo-${width}.png`), fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  }, 60_000);

  it('marks the window of the current minute as still filling', async () => {
    const currentMinute = () => new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
    await expect.poll(async () => (await page.getAttribute('#chart', 'data-filling-start')) === currentMinute(), { timeout: 15_000 }).toBe(true);
    const band = await page.locator('#chart .filling-band').boundingBox();
    const plot = await page.locator('#chart .u-over').boundingBox();
    expect(band!.width).toBeGreaterThan(0);
    expect(band!.x + band!.width).toBeLessThanOrEqual(plot!.x + plot!.width + 1);
    expect(await page.locator('#chart .filling-label').isVisible()).toBe(true);
  }, 30_000);

  it('charts avg_latency by country as the average of each country\'s events, window by window', async () => {
    await page.selectOption('#chart-measure', 'avg_latency');
    await page.selectOption('#chart-dimension', 'country');
    await page.locator('#chart-title', { hasText: 'avg_latency: avg(latency_ms) per 1m window, by country' }).waitFor();
    await page.click('#chart-values summary');
    // With no new events and nothing left to fold in, the chart and the raw events must agree.
    generator.stop();
    await expect.poll(async () => ((await (await fetch(`${node.url!}/v1/status`)).json()) as { lag: { records: number } }).lag.records, { timeout: 30_000 }).toBe(0);

    const since = await page.getAttribute('#chart', 'data-since');
    const averages = async () => {
      const { rows } = await query(node.url!, `
        SELECT strftime(date_trunc('minute', ts), '%Y-%m-%dT%H:%M:%S.000Z'), coalesce(country, 'NULL'), sum(latency_ms), count(latency_ms)
        FROM events WHERE latency_ms >= 0 AND ts >= TIMESTAMP '${since!.slice(0, 19).replace('T', ' ')}' GROUP BY ALL`);
      return new Map(rows.map(([start, country, sum, count]) => [`${String(start)} ${String(country)}`, Number(sum) / Number(count)]));
    };
    const charted = () => page.$$eval('#chart-values td[data-series]', (tds) => tds.filter((td) => td.getAttribute('data-value') !== '').map((td) =>
      [`${td.closest('tr')!.getAttribute('data-window-start')} ${td.getAttribute('data-series')}`, Number(td.getAttribute('data-value'))] as [string, number]));
    /** Windows and countries charted but not in the events, or the other way round, or with another value. */
    const differences = async () => {
      const expected = await averages();
      const shown = new Map(await charted());
      const keys = [...new Set([...expected.keys(), ...shown.keys()])].sort();
      return keys.filter((k) => !(Math.abs((shown.get(k) ?? NaN) - expected.get(k)!) <= 1e-9 * Math.abs(expected.get(k)!)))
        .map((k) => `${k}: charted ${shown.get(k)}, events ${expected.get(k)}`);
    };
    expect((await averages()).size).toBeGreaterThan(7);
    // Polled until the chart has refreshed after the last events were folded in.
    await expect.poll(differences, { timeout: 20_000 }).toEqual([]);
  }, 90_000);
});

async function query(url: string, sql: string): Promise<{ rows: unknown[][] }> {
  const response = await fetch(`${url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql }) });
  if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);
  return (await response.json()) as { rows: unknown[][] };
}
