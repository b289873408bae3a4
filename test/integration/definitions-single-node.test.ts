import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import type { StatusInfo, ViewInfo } from '../../serving-layer/http/api-types.ts';
import { makeEvents, scenarioConfigYaml } from './fixtures/exactness-scenario.ts';

const run = promisify(execFile);
const LAMBDA = new URL('../../cli/lambda.mjs', import.meta.url).pathname;
const QUERY_TOKEN = 'query-token-123';
const ADMIN_TOKEN = 'admin-token-456';

/** The scenario's two views, an alert on one, and both tokens. */
function configYaml(dir: string): string {
  return `${scenarioConfigYaml(dir).replace('serving: {port: 0}', `serving: {port: 0, token: ${QUERY_TOKEN}, adminToken: ${ADMIN_TOKEN}}`)}alerts:
  big_spender:
    view: revenue_by_country
    condition: "revenue > 1000"
    notify: [{webhook: "http://127.0.0.1:9/hook?key=hook-secret", headers: {authorization: "Bearer header-secret"}}]
`;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function call(url: string, method: string, path: string, options: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function lambda(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LAMBDA, ...args], { env: { ...process.env, LAMBDA_URL: '', LAMBDA_TOKEN: '', LAMBDA_ADMIN_TOKEN: '', LOG_LEVEL: 'warn' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const CHECKOUT_VIEW = { window: '1m', dimensions: ['country'], filter: "page = '/checkout'", measures: { checkouts: 'count(*)' } };

describe('definitions on a single node: HTTP, lambda apply and lambda get', () => {
  let dir: string;
  let configFile: string;
  let node: LambdaNode;
  let url: string;
  const logger = createLogger('test', { level: 'error' });
  const start = async () => {
    node = await LambdaNode.start({ loaded: parseConfig(configYaml(dir), { file: configFile }), roles: [...ALL_ROLES], logger });
    url = node.url!;
  };
  const version = async () => (await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN })).body['version'];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-definitions-'));
    configFile = join(dir, 'lambda.yaml');
    writeFileSync(configFile, configYaml(dir));
    await start();
  }, 60_000);

  afterAll(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("seeds the store from the config file: version 1, the views and alerts as written", async () => {
    const { status, body } = await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN });
    expect(status).toBe(200);
    expect(body['version']).toBe(1);
    expect(Object.keys(body['views'] as object)).toEqual(['page_traffic', 'revenue_by_country']);
    expect((body['views'] as Record<string, { window: string }>)['page_traffic']!.window).toBe('1 minute');
    // A reader sees the webhook's secrets redacted; the admin sees them, as applied.
    expect(body['alerts']).toEqual({
      big_spender: { view: 'revenue_by_country', condition: 'revenue > 1000', notify: [{ webhook: 'http://127.0.0.1:9/hook?<redacted>', headers: { authorization: '<redacted>' } }] },
    });
    const asAdmin = (await call(url, 'GET', '/v1/definitions', { token: ADMIN_TOKEN })).body['alerts'] as Record<string, { notify: unknown }>;
    expect(asAdmin['big_spender']!.notify).toEqual([{ webhook: 'http://127.0.0.1:9/hook?key=hook-secret', headers: { authorization: 'Bearer header-secret' } }]);
    expect(existsSync(join(dir, 'definitions.json'))).toBe(true);
  });

  it("refuses a reader's redacted copy applied back, naming where the secret was", async () => {
    const asReader = (await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN })).body;
    const answer = await call(url, 'PUT', '/v1/definitions', { token: ADMIN_TOKEN, body: { views: asReader['views'], alerts: asReader['alerts'] } });
    expect(answer.status).toBe(400);
    expect(answer.body['error']).toMatch(/alerts\.big_spender\.notify\.0\.webhook: holds <redacted>/);
    expect(answer.body['error']).toMatch(/alerts\.big_spender\.notify\.0\.headers\.authorization: holds <redacted>/);
    expect(await version()).toBe(1);
  });

  it('changes need the admin token: none is 401, the query token 403, the admin token 200', async () => {
    const put = (token?: string) => call(url, 'PUT', '/v1/views/checkouts', { ...(token ? { token } : {}), body: CHECKOUT_VIEW });
    expect((await put()).status).toBe(401);
    const asReader = await put(QUERY_TOKEN);
    expect(asReader.status).toBe(403);
    expect(asReader.body['error']).toMatch(/admin token \(serving\.adminToken\)/);
    expect(await version()).toBe(1);
    const asAdmin = await put(ADMIN_TOKEN);
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body).toMatchObject({ version: 2, previousVersion: 1, applied: true, diff: { views: { added: ['checkouts'], changed: [], removed: [] } } });
    // The admin token reads as well.
    expect((await call(url, 'GET', '/v1/definitions', { token: ADMIN_TOKEN })).body['version']).toBe(2);
  });

  it('refuses a bad definition with 400 naming the key path, and changes nothing', async () => {
    const before = await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN });
    const badMeasure = await call(url, 'PUT', '/v1/views/broken', { token: ADMIN_TOKEN, body: { measures: { total: 'sum(no_such_field)' } } });
    expect(badMeasure.status).toBe(400);
    expect(badMeasure.body['error']).toMatch(/views\.broken\.measures\.total: .*no_such_field/);
    const badAlert = await call(url, 'PUT', '/v1/alerts/nowhere', { token: ADMIN_TOKEN, body: { view: 'no_such_view', condition: 'true' } });
    expect(badAlert.status).toBe(400);
    expect(badAlert.body['error']).toMatch(/alerts\.nowhere\.view: unknown view "no_such_view"/);
    // Removing a view an alert still watches would leave the alert dangling.
    const dangling = await call(url, 'DELETE', '/v1/views/revenue_by_country', { token: ADMIN_TOKEN });
    expect(dangling.status).toBe(400);
    expect(dangling.body['error']).toMatch(/alerts\.big_spender\.view/);
    expect((await call(url, 'DELETE', '/v1/alerts/no_such_alert', { token: ADMIN_TOKEN })).status).toBe(404);
    expect(await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN })).toEqual(before);
  });

  it('of two changes made against one version, one wins and the other gets 409', async () => {
    // Read as the admin: a reader's copy has the webhook's secrets redacted, and is refused.
    const current = (await call(url, 'GET', '/v1/definitions', { token: ADMIN_TOKEN })).body;
    const change = (alertName: string) =>
      call(url, 'PUT', '/v1/definitions', {
        token: ADMIN_TOKEN,
        body: { views: current['views'], alerts: { ...(current['alerts'] as object), [alertName]: { view: 'checkouts', condition: 'checkouts > 10' } }, expectedVersion: current['version'] },
      });
    const answers = await Promise.all([change('many_checkouts_a'), change('many_checkouts_b')]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect(answers.find((a) => a.status === 409)!.body['error']).toMatch(/changed meanwhile: this change was made against version 2, but they are at version 3 now/);
    const winner = answers.find((a) => a.status === 200)!.body['diff'] as { alerts: { added: string[] } };
    expect(Object.keys((await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN })).body['alerts'] as object).sort()).toEqual(['big_spender', ...winner.alerts.added].sort());
  });

  it('lambda apply --dry-run prints the diff and changes nothing; lambda apply applies it; lambda get prints it back', async () => {
    const current = (await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN })).body as { version: number; views: Record<string, Record<string, unknown>> };
    const file = join(dir, 'defs.yaml');
    // page_traffic changed (a measure less), revenue_by_country removed (with its alert), checkouts kept, by_page added.
    const { users: _users, ...pageMeasures } = current.views['page_traffic']!['measures'] as Record<string, string>;
    writeFileSync(
      file,
      `views:
  page_traffic: ${JSON.stringify({ ...current.views['page_traffic'], measures: pageMeasures })}
  checkouts: ${JSON.stringify(CHECKOUT_VIEW)}
  by_page: {window: 5m, dimensions: [page], measures: {hits: "count(*)"}}
`,
    );
    const dry = await lambda('apply', '-f', file, '--dry-run', '--url', url, '--admin-token', ADMIN_TOKEN);
    expect(dry.stderr).toBe('');
    const winnerAlert = Object.keys((await call(url, 'GET', '/v1/definitions', { token: QUERY_TOKEN })).body['alerts'] as object).find((n) => n !== 'big_spender')!;
    expect(dry.stdout).toBe(
      `+ view by_page\n~ view page_traffic\n- view revenue_by_country\n- alert big_spender\n- alert ${winnerAlert}\ndry run: nothing applied; the definitions stay at version ${current.version}\n`,
    );
    expect(await version()).toBe(current.version);

    const asReader = await lambda('apply', '-f', file, '--url', url, '--token', QUERY_TOKEN);
    expect(asReader.code).toBe(1);
    expect(asReader.stderr).toMatch(/403 .*admin token/);

    const applied = await lambda('apply', '-f', file, '--url', url, '--admin-token', ADMIN_TOKEN);
    expect(applied.stdout).toContain(`applied: definitions version ${current.version + 1} (was ${current.version})`);

    const got = await lambda('get', 'definitions', '--url', url, '--token', QUERY_TOKEN);
    expect(got.stdout).toMatch(new RegExp(`^# definitions version ${current.version + 1}, published `));
    const printed = parseYaml(got.stdout) as { version: number; views: Record<string, unknown>; alerts: Record<string, unknown> };
    expect(printed.version).toBe(current.version + 1);
    expect(Object.keys(printed.views)).toEqual(['page_traffic', 'checkouts', 'by_page']);
    expect(printed.alerts).toEqual({});
    // Applied again as printed: nothing to do.
    const getFile = join(dir, 'got.yaml');
    writeFileSync(getFile, got.stdout);
    expect((await lambda('apply', '-f', getFile, '--url', url, '--admin-token', ADMIN_TOKEN)).stdout).toBe(`no changes\nnothing to apply; the definitions stay at version ${current.version + 1}\n`);
  }, 60_000);

  it('status shows the published version and the one this node runs (it follows without a restart); after a restart it runs the published set, not its file', async () => {
    const published = (await version()) as number;
    let status: StatusInfo | undefined;
    for (let i = 0; i < 100 && status?.definitions?.running !== published; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await call(url, 'GET', '/v1/status', { token: QUERY_TOKEN })).body as unknown as StatusInfo;
    }
    expect(status!.definitions).toEqual({ version: published, running: published });
    expect(status!.members.map((m) => m.definitionsVersion)).toEqual([published]);
    await node.stop();
    await start();
    const restarted = (await call(url, 'GET', '/v1/status', { token: QUERY_TOKEN })).body as unknown as StatusInfo;
    expect(restarted.definitions).toEqual({ version: published, running: published });
    expect(restarted.members.map((m) => m.definitionsVersion)).toEqual([published]);
    const views = ((await call(url, 'GET', '/v1/views', { token: QUERY_TOKEN })).body['views'] as ViewInfo[]).map((v) => v.name);
    expect(views.sort()).toEqual(['by_page', 'checkouts', 'page_traffic']);
    const pageTraffic = ((await call(url, 'GET', '/v1/views', { token: QUERY_TOKEN })).body['views'] as ViewInfo[]).find((v) => v.name === 'page_traffic')!;
    expect(pageTraffic.measures.map((m) => m.name)).not.toContain('users');
  }, 60_000);

  it('takes a YAML body; a name that is not an identifier is a 400 naming it', async () => {
    const put = (name: string) =>
      fetch(`${url}/v1/views/${name}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/yaml' },
        body: 'window: 10m\ndimensions: [country]\nmeasures:\n  orders: count(amount)\n',
      });
    const before = (await version()) as number;
    const bad = await put('by-country');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/views\.by-country: "by-country": view name must be a plain SQL identifier/);
    const good = await put('by_country');
    expect(good.status).toBe(200);
    expect(await good.json()).toMatchObject({ version: before + 1, diff: { views: { added: ['by_country'] } } });
    const stored = (await call(url, 'GET', '/v1/definitions', { token: ADMIN_TOKEN })).body['views'] as Record<string, unknown>;
    expect(stored['by_country']).toEqual({ window: '10m', dimensions: ['country'], measures: { orders: 'count(amount)' } });
  });

  it('lambda apply --wait returns once the added view serves, exact at that moment; GET /v1/views?waitFor= refuses a bad wait', async () => {
    const events = makeEvents(0, 400);
    const posted = await fetch(`${url}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${QUERY_TOKEN}` }, body: events.map((e) => JSON.stringify(e)).join('\n') });
    expect(posted.status).toBe(200);
    const eventCount = async () => Number(((await call(url, 'POST', '/v1/query', { token: QUERY_TOKEN, body: { sql: 'SELECT count(*) AS n FROM events' } })).body['rows'] as unknown[][])[0]![0]);
    for (let i = 0; i < 300 && (await eventCount()) !== events.length; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await eventCount()).toBe(events.length);

    const current = (await call(url, 'GET', '/v1/definitions', { token: ADMIN_TOKEN })).body as { version: number; views: Record<string, unknown>; alerts: Record<string, unknown> };
    const file = join(dir, 'wait.yaml');
    writeFileSync(file, `views: ${JSON.stringify({ ...current.views, hits_by_country: { window: 'none', dimensions: ['country'], measures: { hits: 'count(*)' } } })}\nalerts: ${JSON.stringify(current.alerts)}\n`);
    const applied = await lambda('apply', '-f', file, '--wait', '--timeout', '60s', '--url', url, '--admin-token', ADMIN_TOKEN);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(new RegExp(`serving: definitions version ${current.version + 1}, every view exact \\(waited [^)]+\\)\n$`));
    // At once, no retry: the view answers (not 409 backfilling), with every event counted.
    const answer = await call(url, 'POST', '/v1/query', { token: QUERY_TOKEN, body: { sql: 'SELECT country, hits FROM hits_by_country ORDER BY country' } });
    expect(answer.status).toBe(200);
    const byCountry = new Map<string, number>();
    for (const e of events) byCountry.set(e.country, (byCountry.get(e.country) ?? 0) + 1);
    expect(answer.body['rows']).toEqual([...byCountry].sort(([a], [b]) => a.localeCompare(b)).map(([country, n]) => [country, n]));
    // The same over HTTP, as fast as this process can ask: the blocking read answers only once the
    // view serves (the node follows the PUT by a watch, then backfills it), and it answers exactly.
    const put = await call(url, 'PUT', '/v1/views/hits_by_page', { token: ADMIN_TOKEN, body: { window: 'none', dimensions: ['page'], measures: { hits: 'count(*)' } } });
    expect(put.status).toBe(200);
    const waited = await call(url, 'GET', `/v1/views?waitFor=${put.body['version']}&timeout=1m`, { token: QUERY_TOKEN });
    expect(waited.body['settled']).toBe(true);
    expect((waited.body['views'] as ViewInfo[]).find((v) => v.name === 'hits_by_page')).toMatchObject({ state: 'serving' });
    expect((waited.body['views'] as ViewInfo[]).filter((v) => v.backfill)).toEqual([]);
    const byPage = await call(url, 'POST', '/v1/query', { token: QUERY_TOKEN, body: { sql: 'SELECT page, hits FROM hits_by_page ORDER BY page' } });
    expect(byPage.status).toBe(200);
    const hitsByPage = new Map<string, number>();
    for (const e of events) hitsByPage.set(e.page, (hitsByPage.get(e.page) ?? 0) + 1);
    expect(byPage.body['rows']).toEqual([...hitsByPage].sort(([a], [b]) => a.localeCompare(b)).map(([page, n]) => [page, n]));
    // Waiting for a version this node runs answers at once, settled.
    const settled = await call(url, 'GET', `/v1/views?waitFor=${current.version + 1}&timeout=1m`, { token: QUERY_TOKEN });
    expect(settled.status).toBe(200);
    expect(settled.body['settled']).toBe(true);
    expect((settled.body['views'] as ViewInfo[]).map((v) => v.name)).toContain('hits_by_country');
    const tooLong = await call(url, 'GET', '/v1/views?waitFor=1&timeout=10m', { token: QUERY_TOKEN });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body['error']).toMatch(/timeout: "10m" is not a duration of at most 5m/);
    expect((await call(url, 'GET', '/v1/views?waitFor=soon', { token: QUERY_TOKEN })).status).toBe(400);
  }, 90_000);
});
