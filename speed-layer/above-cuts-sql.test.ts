import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inMemoryDuckDb } from '../test/harness/in-memory-duckdb.ts';
import { aboveCutsRelationSql } from './above-cuts-sql.ts';

describe('aboveCutsRelationSql', () => {
  const db = inMemoryDuckDb();

  it('keeps exactly the rows at or above their partition\'s cut, and every row of a partition without one', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 50 })), { maxLength: 60 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 60 })), { maxLength: 5 }),
        async (rows, cutList) => {
          const cuts = new Map(cutList);
          const { connection } = db;
          await connection.run('CREATE OR REPLACE TABLE rows (_partition INTEGER, _offset BIGINT)');
          if (rows.length > 0) await connection.run(`INSERT INTO rows VALUES ${rows.map(([p, o]) => `(${p}, ${o})`).join(', ')}`);
          const reader = await connection.runAndReadAll(`SELECT _partition, _offset FROM ${aboveCutsRelationSql('rows', cuts)} ORDER BY ALL`);
          const got = reader.getRows().map(([p, o]) => [Number(p), Number(o)]);
          const expected = rows.filter(([p, o]) => o >= (cuts.get(p) ?? 0)).sort(([p1, o1], [p2, o2]) => p1 - p2 || o1 - o2);
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('states the cuts as equalities on _partition ORed together, which DuckDB prunes Parquet row groups by, not as a CASE', () => {
    const sql = aboveCutsRelationSql('events', new Map([[0, 10_000], [1, 0], [2, 20_000]]));
    expect(sql).toContain('WHERE (_partition = 0 AND _offset >= 10000) OR (_partition = 2 AND _offset >= 20000) UNION ALL');
    expect(sql).toContain('WHERE _partition NOT IN (0, 2)');
    expect(sql).not.toMatch(/CASE/);
  });

  it('is the whole relation without cuts', () => {
    expect(aboveCutsRelationSql('events', new Map([[0, 0]]))).toBe('(SELECT * FROM events)');
  });
});
