import type { SourceRecord } from './record-source.ts';

/**
 * Records of one partition packed into a few transferable buffers, so that handing a batch to a
 * worker thread costs one copy of the values and no per-record structured clone.
 */
export interface PackedRecords {
  readonly offsets: Float64Array;
  readonly timestampsMs: Float64Array;
  /** Value i is bytes[ends[i-1] (or 0) .. ends[i]); a negative end marks a null value. */
  readonly ends: Int32Array;
  readonly bytes: Uint8Array;
}

export function packRecords(records: readonly SourceRecord[]): PackedRecords {
  const n = records.length;
  let total = 0;
  for (const record of records) total += record.value?.length ?? 0;
  const offsets = new Float64Array(n);
  const timestampsMs = new Float64Array(n);
  const ends = new Int32Array(n);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const record = records[i]!;
    offsets[i] = record.offset;
    timestampsMs[i] = record.timestampMs;
    if (record.value === null) {
      ends[i] = -at - 1;
      continue;
    }
    bytes.set(record.value, at);
    at += record.value.length;
    ends[i] = at;
  }
  return { offsets, timestampsMs, ends, bytes };
}

export function transferList(packed: PackedRecords): ArrayBuffer[] {
  return [packed.offsets.buffer, packed.timestampsMs.buffer, packed.ends.buffer, packed.bytes.buffer] as ArrayBuffer[];
}
