import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inMemoryDuckDb } from '../../test/harness/in-memory-duckdb.ts';
import { blockBoundaryAtOrBelow, offsetBlock, offsetBlockSql } from './offset-block.ts';

const db = inMemoryDuckDb();

describe('offset blocks', () => {
  it('puts each offset in the block whose range holds it, and rounds a cut down to the nearest boundary', () => {
    fc.assert(
      fc.property(fc.nat(10_000_000), fc.integer({ min: 1, max: 100_000 }), (offset, blockSize) => {
        const block = offsetBlock(offset, blockSize);
        expect(block * blockSize <= offset && offset < (block + 1) * blockSize).toBe(true);
        const boundary = blockBoundaryAtOrBelow(offset, blockSize);
        expect(boundary % blockSize).toBe(0);
        expect(boundary <= offset && offset - boundary < blockSize).toBe(true);
      }),
      { seed: 19 },
    );
    expect([offsetBlock(9_999, 10_000), offsetBlock(10_000, 10_000), blockBoundaryAtOrBelow(25_000, 10_000)]).toEqual([0, 1, 20_000]);
  });

  it('computes the same block in DuckDB SQL as in TypeScript', async () => {
    const offsets = [0, 1, 49, 50, 51, 99, 100, 12_345, 2 ** 40 + 7];
    const rows = (await db.connection.runAndReadAll(`SELECT o, ${offsetBlockSql('o', 50)} FROM unnest([${offsets.join(', ')}]::BIGINT[]) AS t(o) ORDER BY o`)).getRowsJS() as [bigint, bigint][];
    expect(rows.map(([, block]) => Number(block))).toEqual(offsets.map((o) => offsetBlock(o, 50)));
  });
});
