import { describe, expect, it } from 'vitest';
import { inMemoryDuckDb } from '../test/harness/in-memory-duckdb.ts';
import { createEventDecoder } from '../core/events/decode-event.ts';
import type { SourceRecord } from '../core/source/record-source.ts';
import { MicroBatchDecoder } from './micro-batch-decoder.ts';
import { packRun } from './record-run.ts';
import { foundationConfig } from '../test/support/foundation-views.ts';

const loaded = foundationConfig({ topic: 't' });

describe('MicroBatchDecoder', () => {
  const db = inMemoryDuckDb();

  const values: (Buffer | null)[] = [
    Buffer.from('{"ts":"2026-11-21T09:00:00.123Z","user_id":"u1","page":"/","country":"DE","latency_ms":12.5,"amount":3}'),
    Buffer.from('{"ts":1795251600000,"page":"/checkout","amount":null}'),
    // Valid for JSON.parse but not for the SQL fast path: decoded by the core decoder instead.
    Buffer.from('  {"ts":"2026-11-21T10:00:00+01:00","page":"/a","page":"/b"}'),
    Buffer.from([0x7b, 0x22, 0x74, 0x73, 0x22, 0x3a, 0x31, 0x2c, 0x22, 0x70, 0x61, 0x67, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
    Buffer.from('{"ts":1795251600000,"amount":"12"}'),
    Buffer.from('{"ts":1795251600000,"amount":1,}'),
    Buffer.from('{"page":"/"}'),
    null,
    Buffer.from('"just a string"'),
    // In the canonical form: the lane reads them, or leaves them to the core decoder (a day
    // February lacks, an amount too large for a double).
    Buffer.from('{"ts":"2026-11-21T09:00:01.000Z","user_id":null,"page":"/x,y","country":"FR","latency_ms":1e2,"amount":-0.5}'),
    Buffer.from('{"ts":"2026-02-30T09:00:00.000Z","user_id":"u2","page":"/","country":"DE","latency_ms":1,"amount":1}'),
    Buffer.from('{"ts":"2026-11-21T09:00:02.000Z","user_id":"u3","page":"/","country":"DE","latency_ms":1,"amount":1e999}'),
  ];
  const all: SourceRecord[] = values.map((value, i) => ({ partition: i % 2, offset: 100 + i, timestampMs: 1_700_000_000_000 + i, value }));
  // As fetched: a run of records per partition; a micro-batch holds them in this order.
  const records = [...all.filter((r) => r.partition === 0), ...all.filter((r) => r.partition === 1)];
  const runs = [0, 1].map((p) => packRun(p, records.filter((r) => r.partition === p)));

  it('decodes good records to typed rows and rejects the others exactly as the core decoder does', async () => {
    const decoder = await MicroBatchDecoder.create(db.instance, loaded.schema);
    const decoded = await decoder.decode(runs);
    const reference = records.map((r) => createEventDecoder(loaded.schema)(r.value));

    expect(decoded.rejected.map((r) => ({ offset: r.record.offset, reason: r.reason, message: r.message }))).toEqual(
      reference.flatMap((result, i) => (result.ok ? [] : [{ offset: records[i]!.offset, reason: result.reason, message: result.message }])),
    );
    expect(decoded.goodCount).toBe(reference.filter((r) => r.ok).length);
    expect(decoded.slowPathCount).toBeGreaterThanOrEqual(decoded.rejected.length + 2);

    const rows = (await db.connection.runAndReadAll(`SELECT _partition, _offset, epoch_ms(ts)::DOUBLE AS ts, page, amount FROM ${decoded.relation} ORDER BY _offset`)).getRowObjects();
    expect(rows.map((r) => ({ ...r, _offset: Number(r._offset) }))).toEqual(
      reference.flatMap((result, i) => {
        if (!result.ok) return [];
        const [ts, , page, , , amount] = result.event.values;
        return [{ _partition: records[i]!.partition, _offset: records[i]!.offset, ts, page, amount }];
      }).sort((a, b) => a._offset - b._offset),
    );
    expect(decoded.newestEventMs).toEqual(new Map([[0, 1795251600123], [1, 1795251601000]]));
    await decoder.close();
  });
});
