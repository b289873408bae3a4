import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ConfigError } from '../errors/index.ts';
import { bindViews } from '../views/bind-views.ts';
import { parseConfig } from './load-config.ts';

const FOUNDATION = readFileSync(new URL('../../test/fixtures/foundation.yaml', import.meta.url), 'utf8');

/** The foundation example with one change applied, as YAML text. */
function variant(change: (config: Record<string, any>) => void): string {
  const config = parse(FOUNDATION);
  change(config);
  return stringify(config);
}

function issuesOf(action: () => unknown): { path: string; message: string }[] {
  try {
    action();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

async function bindIssues(yamlText: string): Promise<{ path: string; message: string }[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await bindViews(parseConfig(yamlText), connection);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('loads the foundation example as written, durations in milliseconds', async () => {
    const { config, schema, views } = parseConfig(FOUNDATION);
    expect(config.zookeeper?.sessionTimeout).toBe(6_000);
    expect(config.speed.interval).toBe(1_000);
    expect(config.serving.queryTimeout).toBe(30_000);
    expect(config.alerts.slow_checkout?.window).toBe(300_000);
    expect(config.alerts.slow_checkout?.for).toBe(30_000);
    expect(schema.timestampField).toBe('ts');
    expect(views.map((v) => [v.definition.name, v.definition.windowMs, v.keyColumns])).toEqual([
      ['page_traffic', 60_000, ['window_start', 'page', 'country']],
      ['revenue_by_country', null, ['country']],
    ]);
    expect(views[0]!.definition.measures.map((m) => m.kind)).toEqual(['count', 'sum', 'avg', 'max', 'approx_count_distinct']);
    const instance = await DuckDBInstance.create(':memory:');
    const bound = await bindViews(parseConfig(FOUNDATION), await instance.connect());
    expect(bound[0]!.outputColumns.map((c) => `${c.name} ${c.type}`)).toEqual([
      'window_start TIMESTAMP', 'page VARCHAR', 'country VARCHAR', 'views BIGINT', 'revenue DOUBLE', 'avg_latency DOUBLE', 'max_latency DOUBLE', 'users BIGINT',
    ]);
    instance.closeSync();
  });

  it('fills in defaults for a minimal single-node config', () => {
    const { config } = parseConfig('source: {timestamp: ts, schema: {page: VARCHAR}}\nviews: {v: {measures: {n: count(*)}}}');
    expect(config.source.kafka).toBeUndefined();
    expect(config.zookeeper).toBeUndefined();
    expect(config.serving).toMatchObject({ host: '127.0.0.1', port: 8080, queryTimeout: 30_000 });
    expect(config.speed).toMatchObject({ interval: 1_000, blockSize: 10_000 });
  });

  it.each([
    ['250ms', 250],
    ['1 minute', 60_000],
    ['5 minutes', 300_000],
    ['1h', 3_600_000],
  ])('accepts the duration %s', (text, expectedMs) => {
    expect(parseConfig(variant((c) => (c.views.revenue_by_country.window = text))).views[1]!.definition.windowMs).toBe(expectedMs);
  });

  it.each<[string, (c: Record<string, any>) => void, string, RegExp]>([
    ['a non-mergeable measure', (c) => (c.views.page_traffic.measures.p95 = 'median(latency_ms)'), 'views.page_traffic.measures.p95', /median\(\) cannot be merged/],
    ['count distinct', (c) => (c.views.page_traffic.measures.u = 'count(DISTINCT user_id)'), 'views.page_traffic.measures.u', /use approx_count_distinct\(user_id\)/],
    ['a ratio of aggregates', (c) => (c.views.page_traffic.measures.r = 'sum(amount) / count(*)'), 'views.page_traffic.measures.r', /single aggregate call/],
    ['an unknown dimension', (c) => (c.views.page_traffic.dimensions = ['page', 'cuntry']), 'views.page_traffic.dimensions.1', /unknown field "cuntry"/],
    ['a bad duration', (c) => (c.speed.interval = '5 parsecs'), 'speed.interval', /not a duration/],
    ['a too short micro-batch', (c) => (c.speed.interval = '10ms'), 'speed.interval', /minimum of 100ms/],
    ['a bad cron expression', (c) => (c.batch.schedule = 'every 5 minutes'), 'batch.schedule', /not a valid cron expression/],
    ['an unknown key', (c) => (c.serving.prot = 1), 'serving.prot', /unknown key/],
    ['a missing topic', (c) => delete c.source.kafka.topic, 'source.kafka.topic', /required/],
    ['a bad field type', (c) => (c.source.schema.amount = 'MONEY'), 'source.schema.amount', /must be one of/],
    ['a reserved view name', (c) => (c.views.events = { measures: { n: 'count(*)' } }), 'views.events', /built-in table/],
    ['an alert on an unknown view', (c) => (c.alerts.slow_checkout.view = 'nope'), 'alerts.slow_checkout.view', /unknown view "nope"/],
    ['an alert window that is not whole buckets', (c) => (c.alerts.slow_checkout.window = '90s'), 'alerts.slow_checkout.window', /whole number/],
    ['a measure named like a dimension', (c) => (c.views.page_traffic.measures.page = 'count(*)'), 'views.page_traffic.measures.page', /already a column/],
    ['a measure named like a rollup\'s window end', (c) => (c.views.page_traffic.measures.window_end = 'count(*)'), 'views.page_traffic.measures.window_end', /already a column/],
    [
      'a dimension named like a window column',
      (c) => {
        c.source.schema.window_end = 'VARCHAR';
        c.views.page_traffic.dimensions = ['page', 'window_end'];
      },
      'views.page_traffic.dimensions.1',
      /window column/,
    ],
    ['zookeeper without kafka', (c) => delete c.source.kafka, 'zookeeper', /needs source.kafka/],
    ['a view name that is not an identifier', (c) => (c.views['page-traffic'] = c.views.page_traffic), 'views.page-traffic', /"page-traffic": view name must be a plain SQL identifier/],
  ])('rejects %s with its key path', (_what, change, path, message) => {
    const issues = issuesOf(() => parseConfig(variant(change)));
    const issue = issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
  });

  it('reports YAML syntax errors', () => {
    expect(issuesOf(() => parseConfig('views: [unclosed'))[0]!.message).toMatch(/YAML syntax/);
  });

  it.each<[string, (c: Record<string, any>) => void, string, RegExp]>([
    ['an unknown column in a measure', (c) => (c.views.page_traffic.measures.bad = 'sum(nosuch)'), 'views.page_traffic.measures.bad', /cannot compute sum\(nosuch\).*nosuch/],
    ['a type error in a measure', (c) => (c.views.page_traffic.measures.bad = 'avg(page)'), 'views.page_traffic.measures.bad', /cannot compute avg\(page\)/],
    ['a nested aggregate', (c) => (c.views.page_traffic.measures.bad = 'sum(count(*))'), 'views.page_traffic.measures.bad', /nested/i],
    ['a non-boolean filter', (c) => (c.views.page_traffic.filter = 'latency_ms'), 'views.page_traffic.filter', /must be a boolean expression/],
    ['an alert condition that is not boolean', (c) => (c.alerts.slow_checkout.condition = 'avg_latency + 1'), 'alerts.slow_checkout.condition', /must be a boolean/],
    ['an alert on an unknown measure', (c) => (c.alerts.slow_checkout.condition = 'p99 > 5'), 'alerts.slow_checkout.condition', /p99/],
  ])('rejects %s when binding in DuckDB, with its key path', async (_what, change, path, message) => {
    const issues = await bindIssues(variant(change));
    const issue = issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
  });
});
