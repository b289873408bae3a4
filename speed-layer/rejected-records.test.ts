import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REJECT_REASONS, type RejectReason } from '../core/events/decode-event.ts';
import type { RejectedRecord } from './micro-batch-decoder.ts';
import { REJECTED_NOT_KEPT_TABLE, REJECTED_REALTIME_TABLE, RejectedRecords } from './rejected-records.ts';

const BLOCK_SIZE = 10;

function rejectedAt(partition: number, offset: number, reason: RejectReason): RejectedRecord {
  return { record: { partition, offset, timestampMs: 0, value: Buffer.from(`bad ${offset}`) }, reason, message: reason };
}

/** Rows kept plus records counted as not kept, per reason, read in one statement. */
async function accountedFor(connection: DuckDBConnection): Promise<Map<string, number>> {
  const reader = await connection.runAndReadAll(`SELECT reason, sum(n)::DOUBLE FROM (
    SELECT reason, count(*) AS n FROM ${REJECTED_REALTIME_TABLE} GROUP BY ALL
    UNION ALL SELECT reason, sum(n) FROM ${REJECTED_NOT_KEPT_TABLE} GROUP BY ALL) GROUP BY ALL`);
  return new Map(reader.getRows().map(([reason, n]) => [reason as string, n as number]));
}

function byReason(records: readonly RejectedRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(r.reason, (counts.get(r.reason) ?? 0) + 1);
  return counts;
}

describe('RejectedRecords', () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;

  beforeEach(async () => {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
  });

  afterEach(() => {
    connection.closeSync();
    instance.closeSync();
  });

  it('keeps the newest maxKept and counts the others per block, so rows plus counts are every record once, across cuts', async () => {
    const rejected = await RejectedRecords.create(connection, { topic: 't', maxKept: 3, blockSize: BLOCK_SIZE });
    const sent = [0, 3, 7, 12, 15, 18, 21, 25, 33].map((offset, i) => rejectedAt(i % 2, offset, REJECT_REASONS[i % 3]!));
    await rejected.add(sent.slice(0, 2));
    await rejected.add(sent.slice(2, 8)); // more than maxKept in one micro-batch
    await rejected.add(sent.slice(8));
    expect(await accountedFor(connection)).toEqual(byReason(sent));
    const kept = (await connection.runAndReadAll(`SELECT _offset::DOUBLE FROM ${REJECTED_REALTIME_TABLE} ORDER BY 1`)).getRows().flat();
    expect(kept).toEqual([21, 25, 33]);

    await rejected.dropBelow(new Map([[0, 20], [1, 10]]));
    expect(await accountedFor(connection)).toEqual(byReason(sent.filter((r) => r.record.offset >= (r.record.partition === 0 ? 20 : 10))));
  });

  it('matches a plain count of the records at or above the cuts, whatever the micro-batches, bound and cuts', async () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), records: fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 1, max: 7 }), fc.constantFrom(...REJECT_REASONS)), { maxLength: 12 }) }),
      fc.record({ kind: fc.constant('cut' as const), blocks: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 6 }), fc.array(step, { maxLength: 12 }), async (maxKept, steps) => {
        await connection.run(`DROP TABLE IF EXISTS ${REJECTED_REALTIME_TABLE}; DROP TABLE IF EXISTS ${REJECTED_NOT_KEPT_TABLE}`);
        const rejected = await RejectedRecords.create(connection, { topic: 't', maxKept, blockSize: BLOCK_SIZE });
        const next = [0, 0];
        const cuts = [0, 0];
        let reference: RejectedRecord[] = [];
        for (const s of steps) {
          if (s.kind === 'add') {
            // Offsets rise per partition and start at the cut, as the speed layer reads them.
            const batch = s.records.map(([p, gap, reason]) => rejectedAt(p, (next[p] = Math.max(next[p]!, cuts[p]!) + gap), reason));
            await rejected.add(batch);
            reference.push(...batch);
          } else {
            s.blocks.forEach((b, p) => (cuts[p] = Math.max(cuts[p]!, (Math.floor(next[p]! / BLOCK_SIZE) - b) * BLOCK_SIZE)));
            await rejected.dropBelow(new Map(cuts.map((c, p) => [p, c])));
            reference = reference.filter((r) => r.record.offset >= cuts[r.record.partition]!);
          }
          expect(await accountedFor(connection)).toEqual(byReason(reference));
        }
      }),
      { numRuns: 40 },
    );
  });
});
