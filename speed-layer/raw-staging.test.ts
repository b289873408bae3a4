import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { inMemoryDuckDb } from '../test/harness/in-memory-duckdb.ts';
import type { SourceRecord } from '../core/source/record-source.ts';
import { RawStaging } from './raw-staging.ts';
import { packRun, splitRun, type RecordRun } from './record-run.ts';

/** Values as producers send them, mostly ASCII JSON, and what else a topic may hold. */
const value = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: fc.constantFrom('a', '{', '"', ':', ',', '1', ' ', '}') }).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme' }).map((s) => Buffer.from(s)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)) },
  { weight: 1, arbitrary: fc.constantFrom(null, Buffer.alloc(0)) },
);
const run = (partition: number, maxLength: number) =>
  fc.tuple(fc.array(value, { minLength: 1, maxLength, size: 'max' }), fc.nat()).map(([values, at]): [RecordRun, RecordRun] => {
    const records: SourceRecord[] = values.map((v, i) => ({ partition, offset: 10 + i, timestampMs: 0, value: v }));
    // As the micro-batcher cuts a run between two micro-batches.
    const [head, tail] = splitRun(packRun(partition, records), at % (records.length + 1));
    return [head, tail];
  });

describe('RawStaging', () => {
  const db = inMemoryDuckDb();

  it.each([
    ['a few pieces', 300, 60],
    ['several chunks', 3_000, 8],
  ])('stages every record with its partition, offset and value text (NULL when null or not UTF-8): runs of %s, split', async (_, maxLength, numRuns) => {
    const staging = new RawStaging(db.connection, 'memory', 'staged');
    await fc.assert(
      fc.asyncProperty(fc.tuple(run(0, maxLength), run(1, maxLength), run(2, maxLength)), fc.nat(5), async (parts, skip) => {
        // Leave some heads out: a micro-batch that starts inside a run.
        const runs = parts.flatMap(([head, tail], k) => (k === skip % 3 ? [tail] : [head, tail]));
        await staging.load(runs);
        const rows = (await db.connection.runAndReadAll(`SELECT _row, _partition, _offset, raw FROM ${staging.relation()} ORDER BY _row`)).getRows();
        const expected = runs.flatMap((r) =>
          Array.from({ length: r.to - r.from }, (_, k) => {
            const i = r.from + k;
            const end = r.packed.ends[i]!;
            const before = i === 0 ? 0 : r.packed.ends[i - 1]!;
            const start = before >= 0 ? before : -before - 1;
            const bytes = end >= 0 ? Buffer.from(r.packed.bytes.subarray(start, end)) : null;
            return [r.partition, r.packed.offsets[i]!, bytes && isUtf8(bytes) ? bytes.toString('utf8') : null];
          }),
        );
        expect(rows.map(([row, partition, offset, raw]) => [row, partition, Number(offset), raw])).toEqual(expected.map((e, row) => [row, ...e]));
      }),
      { numRuns },
    );
  });
});
