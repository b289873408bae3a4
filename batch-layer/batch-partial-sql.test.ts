import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../core/batch/batch-manifest.ts';
import { quoteLiteral } from '../core/sql/identifiers.ts';
import { installSqlMacros } from '../core/duckdb/sql-macros.ts';
import { SKETCH_SIZE } from '../core/views/distinct-sketch.ts';
import { parseMeasure } from '../core/views/measure.ts';
import { compileView } from '../core/views/view-compiler.ts';
import type { EventSchema, ViewDefinition } from '../core/views/view-definition.ts';
import { batchPartialSql, choosePartialPlan } from './batch-partial-sql.ts';

const schema: EventSchema = {
  timestampField: 'ts',
  fields: [
    { name: 'ts', type: 'TIMESTAMP' },
    { name: 'k', type: 'VARCHAR' },
    { name: 'u', type: 'VARCHAR' },
    { name: 'n', type: 'BIGINT' },
    { name: 'x', type: 'DOUBLE' },
  ],
};

function view(name: string, windowMs: number | null, dimensions: string[], measures: Record<string, string>, filter?: string): ViewDefinition {
  return {
    name,
    windowMs,
    dimensions,
    ...(filter ? { filter } : {}),
    measures: Object.entries(measures).map(([measureName, expression]) => {
      const parsed = parseMeasure(measureName, expression);
      if (!parsed.ok) throw new Error(parsed.message);
      return parsed.measure;
    }),
  };
}

const VIEWS: readonly ViewDefinition[] = [
  view('all_measures', 60_000, ['k'], { c: 'count(*)', s: 'sum(x)', sn: 'sum(n)', a: 'avg(x)', lo: 'min(u)', hi: 'max(n)', users: 'approx_count_distinct(u)' }),
  view('two_sketches_filtered', null, ['k'], { users: 'approx_count_distinct(u)', ns: 'approx_count_distinct(n % 50000)', c: 'count(x)' }, 'x IS NULL OR x > 0.5'),
  view('sketch_only_no_keys', null, [], { users: 'approx_count_distinct(lower(u))' }),
  view('no_sketch', 60_000, [], { s: 'sum(x)', c: 'count(*)' }),
];

/**
 * Events in which key `big` has far more than SKETCH_SIZE distinct users (the sketch is cut to
 * its K smallest hashes), the other keys a few repeated users, with NULLs in every column.
 * Amounts are quarters, so sums are exact in any order and results compare exactly.
 */
const EVENTS_SQL = `
  SELECT TIMESTAMP '2026-01-01 00:00:00' + to_milliseconds((i * 7) % 600000) AS ts,
         CASE WHEN i % 97 = 0 THEN NULL WHEN i % 3 = 0 THEN 'big' ELSE 'k' || (i % 5)::VARCHAR END AS k,
         CASE WHEN i % 89 = 0 THEN NULL WHEN i % 3 = 0 THEN 'user' || i::VARCHAR ELSE 'u' || (i % 40)::VARCHAR END AS u,
         CASE WHEN i % 83 = 0 THEN NULL ELSE i END AS n,
         CASE WHEN i % 79 = 0 THEN NULL ELSE (i % 400) / 4 END AS x
  FROM range(150000) r(i)`;

describe('batchPartialSql (per-hash plan)', () => {
  let duckdb: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeAll(async () => {
    duckdb = await DuckDBInstance.create(':memory:');
    connection = await duckdb.connect();
    await installSqlMacros(connection);
    await connection.run(`CREATE TABLE events AS ${EVENTS_SQL}`);
  });

  afterAll(() => {
    connection?.closeSync();
    duckdb?.closeSync();
  });

  const rowsOf = async (sql: string) => (await connection.runAndReadAll(sql)).getRowObjectsJson();
  const differing = async (a: string, b: string) =>
    Number((await connection.runAndReadAll(`SELECT count(*) FROM ((${a}) EXCEPT ALL (${b}))`)).getRows()[0]![0]);
  /** `sql`'s rows with each sketch as the set it is (sorted): below K hashes a sketch's order is any. */
  const asSets = (compiled: ReturnType<typeof compileView>, sql: string) => {
    const sketches = compiled.stateColumns.filter((c) => c.name.endsWith('__sketch')).map((c) => `list_sort(${c.name}) AS ${c.name}`);
    return sketches.length === 0 ? sql : `SELECT * REPLACE (${sketches.join(', ')}) FROM (${sql})`;
  };

  it.each(VIEWS.map((v) => [v.name, v] as const))('%s: equals the one-step partial state exactly, column for column', async (_name, definition) => {
    const compiled = compileView(definition, schema);
    const oneStep = compiled.partialSql('events');
    const twoStep = batchPartialSql(compiled, schema, 'events', 'per-hash');
    expect(batchPartialSql(compiled, schema, 'events', 'one-step')).toBe(oneStep);
    const [oneColumns, twoColumns] = await Promise.all([oneStep, twoStep].map(async (sql) => (await connection.runAndReadAll(`DESCRIBE ${sql}`)).getRows()));
    expect(twoColumns).toEqual(oneColumns);
    expect(await rowsOf(`SELECT count(*) AS n FROM (${twoStep})`)).toEqual(await rowsOf(`SELECT count(*) AS n FROM (${oneStep})`));
    expect(await differing(asSets(compiled, oneStep), asSets(compiled, twoStep))).toBe(0);
    expect(await differing(asSets(compiled, twoStep), asSets(compiled, oneStep))).toBe(0);
  });

  it('keeps sketches exact below K distinct values and cut to the K smallest hashes, sorted, above', async () => {
    const compiled = compileView(VIEWS[1]!, schema);
    const sketches = await rowsOf(`
      SELECT p.k, len(p.users__sketch) AS kept, d.distinct_users,
             list_sort(p.users__sketch) = list_slice(d.sorted_hashes, 1, ${SKETCH_SIZE}) AS smallest,
             len(p.users__sketch) < ${SKETCH_SIZE} OR p.users__sketch = list_sort(p.users__sketch) AS sorted_when_cut
      FROM (${batchPartialSql(compiled, schema, 'events', 'per-hash')}) p
      JOIN (SELECT k, count(DISTINCT u) AS distinct_users, list_sort(list(DISTINCT hash(u)) FILTER (WHERE u IS NOT NULL)) AS sorted_hashes
            FROM events WHERE x IS NULL OR x > 0.5 GROUP BY k) d ON p.k IS NOT DISTINCT FROM d.k
      ORDER BY p.k`);
    expect(sketches.length).toBe(7);
    for (const row of sketches) {
      expect(row['smallest']).toBe(true);
      expect(row['sorted_when_cut']).toBe(true);
      expect(Number(row['kept'])).toBe(Math.min(SKETCH_SIZE, Number(row['distinct_users'])));
    }
    expect(sketches.some((row) => Number(row['distinct_users']) > SKETCH_SIZE)).toBe(true);
  });

  it('gives no rows over no events', async () => {
    for (const definition of VIEWS) {
      expect(await rowsOf(batchPartialSql(compileView(definition, schema), schema, '(SELECT * FROM events WHERE false)', 'per-hash'))).toEqual([]);
    }
  });
});

describe('choosePartialPlan', () => {
  let dir: string;
  let duckdb: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'partial-plan-'));
    duckdb = await DuckDBInstance.create(':memory:');
    connection = await duckdb.connect();
    await installSqlMacros(connection);
  });

  afterAll(() => {
    connection?.closeSync();
    duckdb?.closeSync();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A previous version of `definition` over `events` events, whose values repeat `repeats` times per key. */
  async function previousVersion(definition: ViewDefinition, events: number, repeats: number, hash = compileView(definition, schema).definitionHash): Promise<BatchManifest> {
    const compiled = compileView(definition, schema);
    const file = `${definition.name}-${repeats}.parquet`;
    const source = `(SELECT TIMESTAMP '2026-01-01' AS ts, 'k' || (i % 10)::VARCHAR AS k, 'u' || (i // ${repeats})::VARCHAR AS u, i AS n, 1.0 AS x FROM range(${events}) r(i))`;
    await connection.run(`COPY (${compiled.partialSql(source)}) TO ${quoteLiteral(join(dir, file))} (FORMAT parquet)`);
    return { eventsRead: events, views: { [definition.name]: { definitionHash: hash, file, rows: 0 } } } as unknown as BatchManifest;
  }

  it('chooses per-hash when the previous version saw each (key, value) pair repeated, one-step otherwise', async () => {
    const definition = VIEWS[0]!;
    const compiled = compileView(definition, schema);
    expect(await choosePartialPlan(connection, dir, compiled, await previousVersion(definition, 100_000, 50))).toBe('per-hash');
    expect(await choosePartialPlan(connection, dir, compiled, await previousVersion(definition, 100_000, 1))).toBe('one-step');
    expect(await choosePartialPlan(connection, dir, compiled, undefined)).toBe('one-step');
    expect(await choosePartialPlan(connection, dir, compiled, await previousVersion(definition, 100_000, 50, 'another-definition'))).toBe('one-step');
    const two = VIEWS[1]!;
    expect(await choosePartialPlan(connection, dir, compileView(two, schema), await previousVersion(two, 100_000, 50))).toBe('one-step');
  });
});
