import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventDecoder } from '../core/events/decode-event.ts';
import { packRecords } from '../core/source/packed-records.ts';
import type { SourceRecord } from '../core/source/record-source.ts';
import { quoteLiteral } from '../core/sql/identifiers.ts';
import { StorageLayout } from '../core/storage/storage-layout.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { inMemoryDuckDb } from '../test/harness/in-memory-duckdb.ts';
import { PartitionBuffer } from './partition-buffer.ts';
import { SegmentWriter } from './segment-writer.ts';

const TOPIC = 'events';
const schema: EventSchema = {
  timestampField: 'ts',
  fields: [
    { name: 'ts', type: 'TIMESTAMP' },
    { name: 'name', type: 'VARCHAR' },
    { name: 'flag', type: 'BOOLEAN' },
    { name: 'small', type: 'INTEGER' },
    { name: 'big', type: 'BIGINT' },
    { name: 'real', type: 'DOUBLE' },
    { name: 'day', type: 'DATE' },
  ],
};

/** Every type, NULLs, short, long and non-ASCII strings, BIGINTs past 2^53, a rejected record now and then. */
function recordAt(partition: number, offset: number): SourceRecord {
  const value =
    offset % 97 === 5
      ? '{"ts": not json'
      : JSON.stringify({
          ts: offset % 2 === 0 ? new Date(Date.UTC(2026, 0, 1) + offset * 1_000).toISOString() : Date.UTC(2026, 0, 1) + offset,
          name: offset % 11 === 0 ? null : offset % 3 === 0 ? `a longer name, number ${offset}, ünïcode` : `n${offset % 50}`,
          flag: offset % 7 === 0 ? null : offset % 2 === 0,
          small: offset % 13 === 0 ? null : offset - 1_000,
          big: offset % 5 === 0 ? `${2n ** 60n + BigInt(offset)}` : offset,
          real: offset % 17 === 0 ? null : offset / 8,
          day: offset % 19 === 0 ? null : `2026-02-${String(1 + (offset % 28)).padStart(2, '0')}`,
        });
  return { partition, offset, timestampMs: 1_700_000_000_000 + offset, value: Buffer.from(value) };
}

describe('SegmentWriter', () => {
  // Opened first, so closed last (after the writer).
  const db = inMemoryDuckDb();
  let dir: string;
  let writer: SegmentWriter;
  const decode = createEventDecoder(schema);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'segment-writer-'));
    writer = await SegmentWriter.create({ duckdb: db.instance, layout: new StorageLayout(dir), topic: TOPIC, schema });
  });

  afterAll(async () => {
    await writer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function rowsOf(path: string): Promise<unknown[][]> {
    return (await db.connection.runAndReadAll(`SELECT * EXCLUDE (_partition) FROM read_parquet(${quoteLiteral(path)}) ORDER BY _offset`)).getRows();
  }

  it('writes a segment staged in groups (one past what an appender commits at once among them) as the same rows as one written in one go', async () => {
    // Group sizes: small ones, and one larger than DuckDB's appender flush (204,800 rows), which takes another route.
    const groups = [1, 2_047, 2_049, 204_801, 300];
    const total = groups.reduce((a, b) => a + b, 0);
    const records = Array.from({ length: total }, (_, offset) => recordAt(0, offset));

    const whole = new PartitionBuffer(0, 0, schema.fields.length);
    whole.add(packRecords(records), decode, 0);
    const wholeContent = whole.content();
    // Partition 1 holds the same records, so the two files are compared without the partition column.
    const onePath = await writer.write({ ...wholeContent, partition: 1 });

    const staged = new PartitionBuffer(0, 0, schema.fields.length);
    const table = writer.newStagedTable();
    let from = 0;
    for (const size of groups) {
      staged.add(packRecords(records.slice(from, from + size)), decode, 0);
      await writer.appendStaged(table, 0, staged.takeAccepted());
      from += size;
    }
    const stagedPath = await writer.write(staged.content(), { table, rows: staged.takenAcceptedCount });
    await writer.dropStaged(table);

    const expected = await rowsOf(onePath);
    expect(expected.length).toBe(wholeContent.accepted.count);
    expect(expected.length).toBe(total - Math.ceil((total - 5) / 97));
    expect(await rowsOf(stagedPath)).toEqual(expected);
  });

  it('reads back the decoded values of each type, NULLs included', async () => {
    const buffer = new PartitionBuffer(2, 0, schema.fields.length);
    buffer.add(packRecords([recordAt(2, 0), recordAt(2, 3), recordAt(2, 77), recordAt(2, 285)]), decode, 0);
    const path = await writer.write(buffer.content());
    const rows = (await db.connection.runAndReadAll(`SELECT _offset, epoch_ms(_kafka_ts), epoch_ms(ts), name, flag, small, big, real, day::VARCHAR FROM read_parquet(${quoteLiteral(path)}) ORDER BY _offset`)).getRows();
    const base = Date.UTC(2026, 0, 1);
    expect(rows).toEqual([
      [0n, 1_700_000_000_000n, BigInt(base), null, null, null, 2n ** 60n, null, null],
      [3n, 1_700_000_000_003n, BigInt(base + 3), 'a longer name, number 3, ünïcode', false, -997, 3n, 3 / 8, '2026-02-04'],
      [77n, 1_700_000_000_077n, BigInt(base + 77), null, null, -923, 77n, 77 / 8, '2026-02-22'],
      [285n, 1_700_000_000_285n, BigInt(base + 285), 'a longer name, number 285, ünïcode', false, -715, 2n ** 60n + 285n, 285 / 8, null],
    ]);
  });
});
