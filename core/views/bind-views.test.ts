import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load-config.ts';
import { ConfigError } from '../errors/index.ts';
import { bindViews } from './bind-views.ts';

/** `connection`, with every SQL text it is asked to run or prepare recorded in `seen`. */
function recording(connection: DuckDBConnection, seen: string[]): DuckDBConnection {
  return new Proxy(connection, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if ((property === 'run' || property === 'prepare') && typeof value === 'function') {
        return (sql: string, ...rest: unknown[]) => {
          seen.push(sql);
          return (value as (...args: unknown[]) => unknown).call(target, sql, ...rest);
        };
      }
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

// Expressions no other test binds, so the process-wide memory of bound views starts without them.
const config = (views: string, alerts = '{}') =>
  parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, k: VARCHAR, v: BIGINT, w: DOUBLE}}
views: ${views}
alerts: ${alerts}
`);

describe('bindViews', () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeEach(async () => {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
  });

  afterEach(() => {
    connection.closeSync();
    instance.closeSync();
  });

  it('binds only the views and alerts it has not bound before, with the types DuckDB gave them', async () => {
    const first = await bindViews(config(`{a: {dimensions: [k], measures: {bind_test_a: 'sum(v * 3)'}}, b: {measures: {bind_test_b: 'count(*)'}}}`), connection);
    const seen: string[] = [];
    const second = await bindViews(
      config(
        `{a: {dimensions: [k], measures: {bind_test_a: 'sum(v * 3)'}}, b: {measures: {bind_test_b: 'sum(w * 7)'}}, c: {measures: {bind_test_c: 'max(k)'}}}`,
        `{high: {view: a, condition: 'bind_test_a > 11'}}`,
      ),
      recording(connection, seen),
    );
    // Each measure is first checked alone: `SELECT <its partial state> FROM <probe>`.
    const measureChecked = (partial: string) => seen.some((sql) => sql.startsWith(`SELECT ${partial} FROM`));
    // a is as it was: not bound again; b changed and c is new: bound; and the new alert.
    expect(measureChecked('sum(v * 3)')).toBe(false);
    expect(measureChecked('sum(w * 7)')).toBe(true);
    expect(measureChecked('max(k)')).toBe(true);
    expect(seen.some((sql) => sql.startsWith('SELECT (bind_test_a > 11) AS c'))).toBe(true);
    expect(second.find((b) => b.view.definition.name === 'a')!.outputColumns).toEqual(first.find((b) => b.view.definition.name === 'a')!.outputColumns);
    expect(second.find((b) => b.view.definition.name === 'b')!.outputColumns).toEqual([{ name: 'bind_test_b', type: 'DOUBLE' }]);
    expect(second.find((b) => b.view.definition.name === 'c')!.outputColumns).toEqual([{ name: 'bind_test_c', type: 'VARCHAR' }]);
    // a's types, remembered, are what a fresh DuckDB gives it.
    const fresh = await DuckDBInstance.create(':memory:');
    try {
      const prepared = await (await fresh.connect()).prepare('SELECT k, sum(v * 3) AS bind_test_a FROM (SELECT NULL::VARCHAR AS k, NULL::BIGINT AS v) GROUP BY k');
      expect(first.find((b) => b.view.definition.name === 'a')!.outputColumns.map((c) => c.type)).toEqual([0, 1].map((i) => prepared.columnType(i).toString()));
    } finally {
      fresh.closeSync();
    }

    // Everything bound before: nothing but the macros runs.
    seen.length = 0;
    await bindViews(config(`{b: {measures: {bind_test_b: 'sum(w * 7)'}}}`, '{}'), recording(connection, seen));
    expect(seen.filter((s) => !s.startsWith('CREATE OR REPLACE MACRO'))).toEqual([]);
  });

  it('reports a view or alert that does not bind every time, however often it is bound', async () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await bindViews(
        config(`{ok: {measures: {bind_test_ok: 'count(*)'}}, bad: {measures: {bind_test_bad: 'sum(no_such_column)'}}}`, `{odd: {view: ok, condition: 'bind_test_ok + 1'}}`),
        connection,
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      const paths = (error as ConfigError).issues.map((i) => i.path);
      expect(paths).toEqual(['views.bad.measures.bind_test_bad', 'alerts.odd.condition']);
    }
  });

  it('binds a view again when the schema under it changed', async () => {
    const a = `{a: {measures: {bind_test_schema: 'sum(v)'}}}`;
    const before = await bindViews(config(a), connection);
    expect(before[0]!.outputColumns[0]!.type).toBe('HUGEINT');
    const doubled = parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, k: VARCHAR, v: DOUBLE, w: DOUBLE}}
views: ${a}
`);
    const after = await bindViews(doubled, connection);
    expect(after[0]!.outputColumns[0]!.type).toBe('DOUBLE');
  });
});
