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
    expect(await firing.textContent()).toContain('/checkout');
    await page.locator('#alert-history tbody tr').first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'console-demo.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
