import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEventDecoder } from '../core/events/decode-event.ts';
import type { SourceRecord } from '../core/source/record-source.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { packRecords } from '../core/source/packed-records.ts';
import { PartitionBuffer } from './partition-buffer.ts';

const schema: EventSchema = {
  timestampField: 'ts',
  fields: [
    { name: 'ts', type: 'TIMESTAMP' },
    { name: 'page', type: 'VARCHAR' },
    { name: 'n', type: 'BIGINT' },
  ],
};
const decode = createEventDecoder(schema);

const value = fc.oneof(
  fc.record({ ts: fc.integer({ min: 0, max: 2_000_000_000_000 }), page: fc.string(), n: fc.integer() }).map((e) => JSON.stringify(e)),
  fc.constantFrom('{"ts": broken', '{"page":"no time"}', '[]', '', '{"ts":"2026-01-01T00:00:00Z","page":"ü€😀"}'),
  fc.string(),
);

/** Records in offset order with jumps and repeats, as a redelivering source could send them. */
const records = fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.option(value, { nil: null })), { maxLength: 60 }).map((steps) => {
  let offset = 5;
  return steps.map(([step, v]): SourceRecord => {
    offset = Math.max(0, offset + step - 1);
    return { partition: 2, offset, timestampMs: 1_000 + offset, value: v === null ? null : Buffer.from(v) };
  });
});

describe('PartitionBuffer', () => {
  it('buffers each record at or above its end once, decoded from the packed bytes', () => {
    fc.assert(
      fc.property(records, records, (first, second) => {
        const buffer = new PartitionBuffer(2, 3, schema.fields.length);
        // The model: one record at a time, skipping offsets below the end, decoding the value's text.
        let end = 3;
        const accepted: [number, number, unknown[]][] = [];
        const rejected: [number, string, string | undefined][] = [];
        let bytes = 0;
        for (const batch of [first, second]) {
          let added = 0;
          for (const r of batch) {
            if (r.offset < end) continue;
            const decoded = decode(r.value === null ? null : r.value.toString('utf8'));
            if (decoded.ok) accepted.push([r.offset, r.timestampMs, [...decoded.event.values]]);
            else rejected.push([r.offset, decoded.reason, r.value?.toString('latin1')]);
            bytes += r.value?.length ?? 0;
            end = r.offset + 1;
            added++;
          }
          expect(buffer.add(packRecords(batch), decode, 0)).toBe(added);
        }
        const content = buffer.content();
        expect(content.accepted.offsets.map((o, i) => [o, content.accepted.kafkaTimestampsMs[i], schema.fields.map((_, f) => content.accepted.columns[f]![i])])).toEqual(accepted);
        expect(content.rejected.map((r) => [r.offset, r.reason, r.raw?.toString('latin1')])).toEqual(rejected);
        expect([buffer.endOffsetExclusive, buffer.byteCount, buffer.recordCount]).toEqual([end, bytes, accepted.length + rejected.length]);
      }),
    );
  });

  it('covers skipped offsets from where the previous segment ended and ignores offsets below its end', () => {
    const buffer = new PartitionBuffer(0, 100, schema.fields.length);
    const at = (offset: number, v: string | null): SourceRecord => ({ partition: 0, offset, timestampMs: 0, value: v === null ? null : Buffer.from(v) });
    buffer.add(packRecords([at(99, '{}'), at(103, '{"ts":1,"page":"a"}'), at(104, 'nope'), at(104, '{"ts":2}')]), decode, 0);
    const content = buffer.content();
    expect([content.firstOffset, content.endOffsetExclusive]).toEqual([100, 105]);
    expect(content.accepted.offsets).toEqual([103]);
    expect(content.rejected.map((r) => [r.offset, r.reason])).toEqual([[104, 'invalid_json']]);
    buffer.reset(105);
    expect(buffer.isEmpty).toBe(true);
  });

  it('hands out accepted records ahead without changing what the segment holds', () => {
    fc.assert(
      fc.property(records, records, records, (first, second, third) => {
        const whole = new PartitionBuffer(2, 3, schema.fields.length);
        const staged = new PartitionBuffer(2, 3, schema.fields.length);
        const taken: ReturnType<PartitionBuffer["takeAccepted"]>[] = [];
        for (const batch of [first, second, third]) {
          whole.add(packRecords(batch), decode, 0);
          staged.add(packRecords(batch), decode, 0);
          taken.push(staged.takeAccepted());
        }
        const rest = staged.content();
        const expected = whole.content();
        expect(rest.accepted.count).toBe(0);
        expect(taken.flatMap((t) => t.offsets)).toEqual(expected.accepted.offsets);
        expect(taken.flatMap((t) => t.kafkaTimestampsMs)).toEqual(expected.accepted.kafkaTimestampsMs);
        expect(schema.fields.map((_, f) => taken.flatMap((t) => t.columns[f]!))).toEqual(expected.accepted.columns);
        expect(rest.rejected).toEqual(expected.rejected);
        expect([staged.takenAcceptedCount, staged.recordCount, staged.endOffsetExclusive]).toEqual([expected.accepted.count, whole.recordCount, whole.endOffsetExclusive]);
        staged.reset(staged.endOffsetExclusive);
        expect([staged.takenAcceptedCount, staged.recordCount, staged.isEmpty]).toEqual([0, 0, true]);
      }),
    );
  });
});
