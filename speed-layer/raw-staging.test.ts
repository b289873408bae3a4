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
/** A run of records as fetched, cut in two as the micro-batcher cuts a run between micro-batches; with its records. */
interface SplitRun {
  readonly parts: [RecordRun, RecordRun];
  readonly records: [SourceRecord[], SourceRecord[]];
}
const run = (partition: number, maxLength: number) =>
  fc.tuple(fc.array(value, { minLength: 1, maxLength, size: 'max' }), fc.nat()).map(([values, at]): SplitRun => {
    const records: SourceRecord[] = values.map((v, i) => ({ partition, offset: 10 + i, timestampMs: 0, value: v }));
    const cut = at % (records.length + 1);
    return { parts: splitRun(packRun(partition, records), cut), records: [records.slice(0, cut), records.slice(cut)] };
  });

/** What the staged relation should hold for `records`, numbered from 0: the value as text when it is UTF-8. */
const expectedRows = (records: readonly SourceRecord[]) =>
  records.map((r, row) => [row, r.partition, r.offset, r.value !== null && isUtf8(r.value) ? r.value.toString('utf8') : null]);

describe('RawStaging', () => {
  const db = inMemoryDuckDb();
  const stagedRows = async (staging: RawStaging) =>
    (await db.connection.runAndReadAll(`SELECT _row, _partition, _offset, raw FROM ${staging.relation()} ORDER BY _row`))
      .getRows()
      .map(([row, partition, offset, raw]) => [row, partition, Number(offset), raw]);

  it.each([
    ['a few pieces', 300, 60],
    ['several chunks', 3_000, 8],
  ])('stages every record with its partition, offset and value text (NULL when null or not UTF-8): runs of %s, split', async (_, maxLength, numRuns) => {
    const staging = new RawStaging(db.connection, 'memory', 'staged');
    await fc.assert(
      fc.asyncProperty(fc.tuple(run(0, maxLength), run(1, maxLength), run(2, maxLength)), fc.nat(5), async (split, skip) => {
        // Leave some heads out: a micro-batch that starts inside a run.
        const kept = split.flatMap(({ parts, records }, k) => (k === skip % 3 ? [[parts[1], records[1]] as const] : [[parts[0], records[0]] as const, [parts[1], records[1]] as const]));
        await staging.load(kept.map(([part]) => part));
        expect(await stagedRows(staging)).toEqual(expectedRows(kept.flatMap(([, records]) => records)));
      }),
      { numRuns },
    );
  });

  it('stages more pieces than one chunk holds, up to a full last chunk of pieces (an all-ASCII run of 2 × 2048 × 64 records)', async () => {
    const staging = new RawStaging(db.connection, 'memory', 'staged_many');
    const records: SourceRecord[] = Array.from({ length: 2048 * 64 * 2 }, (_, i) => ({
      partition: 4,
      offset: i,
      timestampMs: 0,
      value: i % 1000 === 7 ? null : Buffer.from(`{"i":${i}}`),
    }));
    await staging.load([packRun(4, records)]);
    expect(await stagedRows(staging)).toEqual(expectedRows(records));
  });
});
