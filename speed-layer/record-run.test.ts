import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../core/source/record-source.ts';
import { nextOffsets, packRun, runFrom, runLength, runRecord, splitRun, totalLength, type RecordRun } from './record-run.ts';

/** Records of one partition with rising offsets (gaps allowed), values null, empty or text. */
const partitionRecords = (partition: number) =>
  fc
    .array(fc.tuple(fc.integer({ min: 1, max: 3 }), fc.option(fc.string({ unit: 'binary' }), { nil: null })), { minLength: 1, maxLength: 40 })
    .map((items) => {
      let offset = 1_000;
      return items.map(([step, text]): SourceRecord => ({ partition, offset: (offset += step), timestampMs: offset * 10, value: text === null ? null : Buffer.from(text) }));
    });

const recordsOf = (run: RecordRun): SourceRecord[] => Array.from({ length: runLength(run) }, (_, k) => runRecord(run, k));
const plain = (records: readonly SourceRecord[]) => records.map((r) => ({ ...r, value: r.value === null ? null : Buffer.from(r.value).toString('hex') }));

describe('RecordRun', () => {
  it('gives back the records it packed, however it is split or cut', () => {
    fc.assert(
      fc.property(partitionRecords(3), fc.nat(), fc.integer({ min: 990, max: 1_200 }), (records, at, cut) => {
        const run = packRun(3, records);
        expect(plain(recordsOf(run))).toEqual(plain(records));
        const count = at % (records.length + 1);
        const [head, tail] = splitRun(run, count);
        expect(plain(recordsOf(head))).toEqual(plain(records.slice(0, count)));
        expect(plain(recordsOf(tail))).toEqual(plain(records.slice(count)));
        // A cut applied to the tail of a split, as a pending micro-batch's runs get it.
        const above = runFrom(tail, cut);
        expect(above ? plain(recordsOf(above)) : []).toEqual(plain(records.slice(count).filter((r) => r.offset >= cut)));
      }),
    );
  });

  it('tells the offset after each partition’s last record, and the number of records', () => {
    fc.assert(
      fc.property(partitionRecords(0), partitionRecords(1), (p0, p1) => {
        const runs = [packRun(0, p0.slice(0, 5)), packRun(1, p1), packRun(0, p0.slice(5))];
        const expected = new Map<number, number>();
        for (const r of [...p0, ...p1]) expected.set(r.partition, Math.max(expected.get(r.partition) ?? 0, r.offset + 1));
        expect(nextOffsets(runs)).toEqual(expected);
        expect(totalLength(runs)).toBe(p0.length + p1.length);
      }),
    );
  });
});
