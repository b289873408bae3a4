import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonValueConverter } from './json-value.ts';

let instance: DuckDBInstance;
beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
});
afterAll(() => instance?.closeSync());

async function values(sql: string): Promise<unknown[]> {
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    return reader.convertRows(jsonValueConverter)[0]!;
  } finally {
    connection.closeSync();
  }
}

describe('jsonValueConverter', () => {
  it('gives integers as numbers while they are safe, as decimal strings beyond', async () => {
    expect(await values(`SELECT 9007199254740991::BIGINT, -9007199254740991::BIGINT, 9007199254740992::BIGINT,
      18446744073709551615::UBIGINT, 12::HUGEINT, (-2)::HUGEINT ^ 100, 7::UTINYINT, 3::UHUGEINT`)).toEqual([
      9007199254740991, -9007199254740991, '9007199254740992', '18446744073709551615', 12, expect.any(Number), 7, 3,
    ]);
  });

  it('gives DECIMAL as a number and non-finite doubles as strings', async () => {
    expect(await values("SELECT 1.25::DECIMAL(4,2), 123456789.123::DECIMAL(18,3), 'Infinity'::DOUBLE, '-inf'::FLOAT, 0.5::FLOAT")).toEqual([
      1.25, 123456789.123, 'Infinity', '-Infinity', 0.5,
    ]);
  });

  it('gives timestamps of every precision as ISO-8601 in UTC, keeping sub-millisecond digits', async () => {
    expect(await values(`SELECT TIMESTAMP '2026-11-21 09:00:00', TIMESTAMP '1969-12-31 23:59:59.999999', TIMESTAMP '1900-01-01 00:00:00.000001',
      TIMESTAMP_S '2026-11-21 09:00:00', TIMESTAMP_MS '2026-11-21 09:00:00.123', TIMESTAMP_NS '2026-11-21 09:00:00.123456789',
      TIMESTAMPTZ '2026-11-21 09:00:00-05:00', 'infinity'::TIMESTAMP, '-infinity'::TIMESTAMP`)).toEqual([
      '2026-11-21T09:00:00.000Z', '1969-12-31T23:59:59.999999Z', '1900-01-01T00:00:00.000001Z',
      '2026-11-21T09:00:00.000Z', '2026-11-21T09:00:00.123Z', '2026-11-21T09:00:00.123456789Z',
      '2026-11-21T14:00:00.000Z', 'infinity', '-infinity',
    ]);
  });

  it('gives dates as YYYY-MM-DD and other scalars as DuckDB prints them', async () => {
    expect(await values("SELECT DATE '2026-11-21', TIME '09:30:00', INTERVAL 90 MINUTE, 'a1b2c3d4-0000-0000-0000-000000000000'::UUID, 'x'::BLOB")).toEqual([
      '2026-11-21', '09:30:00', expect.any(Object), 'a1b2c3d4-0000-0000-0000-000000000000', 'x',
    ]);
  });

  it('converts nested values with the same rules', async () => {
    expect(await values("SELECT [9007199254740993, 1]::BIGINT[], {'at': TIMESTAMP '2026-01-01', 'n': NULL::INT}, MAP {'k': 1.5::DECIMAL(3,1)}, [1, 2]::INT[2]")).toEqual([
      ['9007199254740993', 1], { at: '2026-01-01T00:00:00.000Z', n: null }, [{ key: 'k', value: 1.5 }], [1, 2],
    ]);
  });

  it('writes every converted value through JSON.stringify unchanged', async () => {
    const row = await values("SELECT 1::HUGEINT, [TIMESTAMP '2026-01-01'], 'NaN'::DOUBLE, NULL");
    expect(JSON.parse(JSON.stringify(row))).toEqual(row);
  });
});
