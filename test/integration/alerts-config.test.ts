import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { ConfigError, type ConfigIssue } from '../../core/errors/index.ts';
import { bindViews } from '../../core/views/bind-views.ts';

const BASE = `
source: {timestamp: ts, schema: {ts: TIMESTAMP, page: VARCHAR, latency_ms: DOUBLE}}
views:
  traffic: {window: 1 minute, dimensions: [page], measures: {views: count(*), avg_latency: avg(latency_ms)}}
  totals: {dimensions: [page], measures: {views: count(*)}}
`;

/** Loads the config with one alert and binds it in DuckDB, as `lambda check` and start-up do. */
async function issuesFor(alertYaml: string): Promise<ConfigIssue[]> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await bindViews(parseConfig(`${BASE}alerts:\n  bad: ${alertYaml}\n`), connection);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return [...error.issues];
    throw error;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe('alert rules are checked at config load', () => {
  it('accepts a well-formed rule', async () => {
    expect(
      await issuesFor(`{view: traffic, where: "page = '/checkout'", window: 5m, condition: "avg_latency > 500", clear: "avg_latency < 400", for: 30s, repeat: 10m}`),
    ).toEqual([]);
  });

  it.each<[string, string, string, RegExp]>([
    ['an unknown view', `{view: trafic, condition: "views > 1"}`, 'alerts.bad.view', /unknown view "trafic"; views are traffic, totals/],
    ['an unknown measure in the condition', `{view: traffic, condition: "p99 > 5"}`, 'alerts.bad.condition', /p99/],
    ['an unknown measure in clear', `{view: traffic, condition: "views > 5", clear: "p50 < 3"}`, 'alerts.bad.clear', /p50/],
    ['an event field that is not a column of the view', `{view: traffic, condition: "latency_ms > 5"}`, 'alerts.bad.condition', /latency_ms/],
    ['an unknown column in where', `{view: traffic, where: "country = 'FR'", condition: "views > 5"}`, 'alerts.bad.where', /country/],
    ['a condition that is not boolean', `{view: traffic, condition: "avg_latency + 1"}`, 'alerts.bad.condition', /must be a boolean expression.*DOUBLE/],
    ['a clear that is not boolean', `{view: traffic, condition: "views > 5", clear: "views"}`, 'alerts.bad.clear', /must be a boolean expression/],
    ['a where that is not boolean', `{view: traffic, where: "page", condition: "views > 5"}`, 'alerts.bad.where', /must be a boolean expression.*VARCHAR/],
    ['a type error in the condition', `{view: traffic, condition: "page > 5 AND page + 1 > 2"}`, 'alerts.bad.condition', /./],
    ['a window that is not whole buckets', `{view: traffic, window: 90s, condition: "views > 5"}`, 'alerts.bad.window', /whole number of the view's 60000ms buckets/],
    ['a window on running totals', `{view: totals, window: 5m, condition: "views > 5"}`, 'alerts.bad.window', /running totals/],
    ['a bad `for`', `{view: traffic, condition: "views > 5", for: soon}`, 'alerts.bad.for', /not a duration/],
    ['a `repeat` under a second', `{view: traffic, condition: "views > 5", repeat: 10ms}`, 'alerts.bad.repeat', /minimum of 1000ms/],
    ['an unknown severity', `{view: traffic, condition: "views > 5", severity: urgent}`, 'alerts.bad.severity', /info|warning|critical/],
    ['a missing condition', `{view: traffic}`, 'alerts.bad.condition', /required/],
    ['an unknown key', `{view: traffic, condition: "views > 5", threshold: 3}`, 'alerts.bad.threshold', /unknown key/],
  ])('rejects %s with its key path', async (_what, alertYaml, path, message) => {
    const issues = await issuesFor(alertYaml);
    const issue = issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
  });

  it('rejects a webhook sink that is not an http(s) URL, under the alert', async () => {
    const issues = await issuesFor(`{view: traffic, condition: "views > 5", notify: [{webhook: "ftp://example.test/hook"}]}`);
    expect(issues.some((i) => i.path.startsWith('alerts.bad.notify.0'))).toBe(true);
  });

  // bindViews binds `SELECT (condition) FROM finalized`, where an aggregate is legal; the
  // evaluation is per instance over the window's merged measures, where it is not.
  it.each<[string, string, string, RegExp]>([
    ['an aggregate in the condition', `{view: traffic, condition: "sum(views) > 3"}`, 'alerts.bad.condition', /aggregate function sum\(\) is not allowed.*merged measures/],
    ['an aggregate in clear', `{view: traffic, condition: "views > 5", clear: "AVG (avg_latency) < 3"}`, 'alerts.bad.clear', /aggregate function avg\(\)/],
    ['an aggregate in where', `{view: traffic, where: "count(*) > 1", condition: "views > 5"}`, 'alerts.bad.where', /aggregate function count\(\)/],
    ['a window function in the condition', `{view: traffic, condition: "views > lag(views) OVER (ORDER BY page)"}`, 'alerts.bad.condition', /lag|OVER/],
  ])('rejects %s with its key path', async (_what, alertYaml, path, message) => {
    const issues = await issuesFor(alertYaml);
    const issue = issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
  });

  it('accepts aggregate names inside string literals and quoted identifiers, and scalar functions', async () => {
    expect(await issuesFor(`{view: traffic, where: "page <> 'sum(x)' AND \\"page\\" <> 'count('", condition: "greatest(views, 0) > 5 AND abs(avg_latency) > 1"}`)).toEqual([]);
  });

  it('rejects an aggregate before anything starts, so no alerting process ever runs it', () => {
    expect(() => parseConfig(`${BASE}alerts:\n  bad: {view: traffic, condition: "max(avg_latency) > 5"}\n`)).toThrow(ConfigError);
  });

  it('rejects a Kafka sink when the source has no kafka, under the sink key path', async () => {
    const issues = await issuesFor(`{view: traffic, condition: "views > 5", notify: [{log: true}, {kafka: {topic: alerts}}]}`);
    expect(issues).toContainEqual({ path: 'alerts.bad.notify.1.kafka', message: expect.stringMatching(/needs source\.kafka/) });
  });

  it('accepts a Kafka sink when the source reads from Kafka', async () => {
    const loaded = parseConfig(
      `${BASE.replace('source: {', 'source: {kafka: {brokers: ["127.0.0.1:9092"], topic: events}, ')}alerts:\n  ok: {view: traffic, condition: "views > 5", notify: [{kafka: {topic: alerts}}]}\n`,
    );
    expect(loaded.config.alerts.ok!.notify).toEqual([{ kafka: { topic: 'alerts' } }]);
  });
});
