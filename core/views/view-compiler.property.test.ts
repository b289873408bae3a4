import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installSqlMacros } from '../duckdb/sql-macros.ts';
import { parseMeasure, type Measure } from './measure.ts';
import { compileView, type CompiledView } from './view-compiler.ts';
import type { EventSchema, ViewDefinition } from './view-definition.ts';

/**
 * The compiler's central promise: for any data split into any parts, partial → merge → finalize
 * equals the aggregate computed directly over all of it. The reference is plain DuckDB SQL written
 * here with the native aggregates (count(DISTINCT) for approx_count_distinct, which the sketch
 * must match exactly below its size), independent of the compiler's output.
 */
const schema: EventSchema = {
  timestampField: 'ts',
  fields: [
    { name: 'ts', type: 'TIMESTAMP' },
    { name: 'k1', type: 'VARCHAR' },
    { name: 'k2', type: 'INTEGER' },
    { name: 'x', type: 'DOUBLE' },
    { name: 'n', type: 'BIGINT' },
    { name: 'u', type: 'VARCHAR' },
  ],
};

/** Each measure with the direct aggregate it must equal. */
const MEASURES: readonly { expression: string; direct: string }[] = [
  { expression: 'count(*)', direct: 'count(*)' },
  { expression: 'count(x)', direct: 'count(x)' },
  { expression: 'sum(x)', direct: 'sum(x)' },
  { expression: 'sum(n)', direct: 'sum(n)' },
  { expression: 'sum(x * 2 + n)', direct: 'sum(x * 2 + n)' },
  { expression: 'min(x)', direct: 'min(x)' },
  { expression: 'max(n)', direct: 'max(n)' },
  { expression: 'min(k1)', direct: 'min(k1)' },
  { expression: 'avg(x)', direct: 'avg(x)' },
  { expression: 'avg(n)', direct: 'avg(n)' },
  { expression: 'approx_count_distinct(u)', direct: 'count(DISTINCT u)' },
  { expression: "approx_count_distinct(k2 * 2 + 1)", direct: 'count(DISTINCT k2 * 2 + 1)' },
];
const WINDOWS_MS = [null, 1_000, 60_000, 7 * 60_000] as const;
const FILTERS = [undefined, 'x > 0', 'k2 <> 3 OR x IS NULL', "k1 IN ('a', 'b')"] as const;
const BASE_MS = Date.UTC(2026, 10, 21, 9, 0, 0);

interface Row {
  tsMs: number;
  k1: string | null;
  k2: number | null;
  x: number | null;
  n: bigint | null;
  u: string | null;
}

const rowArb: fc.Arbitrary<Row> = fc.record({
  tsMs: fc.integer({ min: BASE_MS - 30 * 60_000, max: BASE_MS + 30 * 60_000 }),
  k1: fc.option(fc.constantFrom('a', 'b', 'c', "it's"), { freq: 8 }),
  k2: fc.option(fc.integer({ min: 0, max: 5 }), { freq: 8 }),
  // Quarters are exact in binary floating point, so sums are exact in any order and can be compared
  // exactly; the floating-point error of arbitrary doubles is not what this property is about.
  x: fc.option(fc.integer({ min: -4_000_000, max: 4_000_000 }).map((i) => i / 4), { freq: 6 }),
  n: fc.option(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), { freq: 6 }),
  u: fc.option(fc.string({ minLength: 0, maxLength: 4 }), { freq: 6 }),
});

const caseArb = fc.record({
  windowMs: fc.constantFrom(...WINDOWS_MS),
  dimensions: fc.subarray(['k1', 'k2']),
  filter: fc.constantFrom(...FILTERS),
  measures: fc.uniqueArray(fc.integer({ min: 0, max: MEASURES.length - 1 }), { minLength: 1, maxLength: 6 }),
  rows: fc.array(rowArb, { maxLength: 250 }),
  parts: fc.integer({ min: 1, max: 5 }),
  seed: fc.integer(),
});

function sqlValue(value: string | number | bigint | null): string {
  if (value === null) return 'NULL';
  if (typeof value === 'string') return `'${value.replaceAll("'", "''")}'`;
  return typeof value === 'number' ? value.toExponential(17) : value.toString();
}

function rowSql(row: Row, part: number): string {
  const ts = `make_timestamp(${row.tsMs * 1000})`;
  return `(${ts}, ${[row.k1, row.k2, row.x, row.n, row.u].map(sqlValue).join(', ')}, ${part})`;
}

async function rows(connection: DuckDBConnection, sql: string): Promise<unknown[][]> {
  const reader = await connection.runAndReadAll(sql);
  return reader.getRowsJS() as unknown[][];
}

function expectSameRows(actual: unknown[][], expected: unknown[][], context: string): void {
  expect(actual.length, `${context}: row count`).toBe(expected.length);
  actual.forEach((row, r) =>
    row.forEach((value, c) => {
      const want = expected[r]![c];
      if (typeof want === 'number' && typeof value === 'number') {
        // Averages divide in different places (DuckDB's avg vs sum / count): equal within 1e-9.
        const scale = Math.max(1, Math.abs(want));
        expect(Math.abs(value - want) / scale, `${context}: row ${r} col ${c}: ${value} vs ${want}`).toBeLessThanOrEqual(1e-9);
      } else {
        expect(value, `${context}: row ${r} col ${c}`).toEqual(want);
      }
    }),
  );
}

describe('view compiler on real DuckDB', () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
    await installSqlMacros(connection);
  });
  afterAll(() => {
    connection.closeSync();
    instance.closeSync();
  });

  it('partial → merge → finalize equals the direct aggregate for random data, views and splits (250 cases)', async () => {
    let caseNo = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        caseNo++;
        const measures: Measure[] = c.measures.map((i, j) => {
          const parsed = parseMeasure(`m${j}`, MEASURES[i]!.expression);
          if (!parsed.ok) throw new Error(parsed.message);
          return parsed.measure;
        });
        const definition: ViewDefinition = {
          name: 'v',
          windowMs: c.windowMs,
          dimensions: c.dimensions,
          ...(c.filter ? { filter: c.filter } : {}),
          measures,
        };
        const view = compileView(definition, schema);
        await connection.run('CREATE OR REPLACE TEMP TABLE ev (ts TIMESTAMP, k1 VARCHAR, k2 INTEGER, x DOUBLE, n BIGINT, u VARCHAR, part INTEGER)');
        // Assign rows to parts pseudo-randomly from the case's seed: any split must give the same answer.
        const assign = (i: number) => Math.abs((c.seed ^ (i * 2654435761)) % c.parts);
        if (c.rows.length > 0) {
          await connection.run(`INSERT INTO ev VALUES ${c.rows.map((r, i) => rowSql(r, assign(i))).join(', ')}`);
        }
        const direct = await rows(connection, directSql(definition, c.measures));
        const orderBy = view.keyColumns.length > 0 ? ` ORDER BY ${view.keyColumns.map((_, i) => i + 1).join(', ')}` : '';

        // One partial per part, stacked, then merged and finalized in one pass.
        const partials = Array.from({ length: c.parts }, (_, p) => view.partialSql(`(SELECT * FROM ev WHERE part = ${p})`));
        const stacked = `(${partials.join('\nUNION ALL\n')})`;
        const onePass = await rows(connection, `SELECT * FROM (${view.mergeFinalizeSql(stacked)})${orderBy}`);
        expectSameRows(onePass, direct, `case ${caseNo} merge+finalize`);

        // Merge is closed: merging merged states of part subsets, then finalizing, gives the same.
        const firstHalf = `(${view.mergeSql(`(${partials.slice(0, 1).join(' UNION ALL ')})`)})`;
        const rest = partials.length > 1 ? `(${view.mergeSql(`(${partials.slice(1).join(' UNION ALL ')})`)})` : undefined;
        const merged = view.mergeSql(rest ? `(SELECT * FROM ${firstHalf} UNION ALL SELECT * FROM ${rest})` : firstHalf);
        const twoStage = await rows(connection, `SELECT * FROM (${view.finalizeSql(`(${merged})`)})${orderBy}`);
        expectSameRows(twoStage, direct, `case ${caseNo} merge∘merge+finalize`);
      }),
      { numRuns: 250 },
    );
    expect(caseNo).toBeGreaterThanOrEqual(250);
  }, 300_000);

  function directSql(definition: ViewDefinition, measureIndexes: number[]): string {
    const keys = [
      ...(definition.windowMs === null
        ? []
        : [`make_timestamp((floor(epoch_ms(ts) / ${definition.windowMs}) * ${definition.windowMs} * 1000)::BIGINT) AS window_start`]),
      ...definition.dimensions,
    ];
    const aggregates = measureIndexes.map((i, j) => `${MEASURES[i]!.direct} AS m${j}`);
    const where = definition.filter ? ` WHERE ${definition.filter}` : '';
    const groupBy = keys.length > 0 ? ` GROUP BY ${keys.map((_, i) => i + 1).join(', ')} ORDER BY ${keys.map((_, i) => i + 1).join(', ')}` : ' HAVING count(*) > 0';
    return `SELECT ${[...keys, ...aggregates].join(', ')} FROM ev${where}${groupBy}`;
  }

  it('estimates approx_count_distinct within 2% at 1M distinct values, merged from 8 parts', async () => {
    const view: CompiledView = compileView(
      { name: 'v', windowMs: null, dimensions: [], measures: [(parseMeasure('users', 'approx_count_distinct(u)') as { ok: true; measure: Measure }).measure] },
      schema,
    );
    const source = (p: number) => `(SELECT 'user-' || i::VARCHAR AS u FROM range(1000000) t(i) WHERE i % 8 = ${p})`;
    const stacked = Array.from({ length: 8 }, (_, p) => view.partialSql(source(p))).join(' UNION ALL ');
    const [[estimate]] = (await rows(connection, view.mergeFinalizeSql(`(${stacked})`))) as [[bigint]];
    const relativeError = Math.abs(Number(estimate) - 1_000_000) / 1_000_000;
    expect(relativeError).toBeLessThan(0.02);
  }, 60_000);
});
