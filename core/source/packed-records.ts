import type { SourceRecord } from './record-source.ts';

/**
 * Records of one partition packed into a few flat buffers: one copy of the values, no object per
 * record. Handing them to a worker thread costs no per-record structured clone, and holding them
 * while they wait for a micro-batch costs the garbage collector nothing per record (a
 * `SourceRecord` kept that long is promoted to the old generation, with the fetch buffer its value
 * points into).
 */
export interface PackedRecords {
  readonly offsets: Float64Array;
  readonly timestampsMs: Float64Array;
  /** Value i is bytes[ends[i-1] (or 0) .. ends[i]); a negative end marks a null value. */
  readonly ends: Int32Array;
  readonly bytes: Uint8Array;
}

export function packRecords(records: readonly SourceRecord[]): PackedRecords {
  return packFrom(records, 0, (r) => r.offset, (r) => r.timestampMs, (r) => r.value);
}

/**
 * Packs `items[from..]`, read through the accessors: for a client's own message objects (the
 * Kafka client's offsets and timestamps are strings) without a SourceRecord per record between.
 */
export function packFrom<T>(
  items: readonly T[],
  from: number,
  offsetOf: (item: T) => number,
  timestampMsOf: (item: T) => number,
  valueOf: (item: T) => Uint8Array | null,
): PackedRecords {
  const n = Math.max(0, items.length - from);
  let total = 0;
  for (let i = from; i < items.length; i++) total += valueOf(items[i]!)?.length ?? 0;
  const offsets = new Float64Array(n);
  const timestampsMs = new Float64Array(n);
  const ends = new Int32Array(n);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const item = items[from + i]!;
    offsets[i] = offsetOf(item);
    timestampsMs[i] = timestampMsOf(item);
    const value = valueOf(item);
    if (value === null) {
      ends[i] = -at - 1;
      continue;
    }
    bytes.set(value, at);
    at += value.length;
    ends[i] = at;
  }
  return { offsets, timestampsMs, ends, bytes };
}

export function transferList(packed: PackedRecords): ArrayBuffer[] {
  return [packed.offsets.buffer, packed.timestampsMs.buffer, packed.ends.buffer, packed.bytes.buffer] as ArrayBuffer[];
}

/**
 * Where value i ends in `packed.bytes`, which is where value i+1 starts: a null value ends where
 * it starts. `valueEnd(packed, -1)` is 0.
 */
export function valueEnd(packed: PackedRecords, i: number): number {
  if (i < 0) return 0;
  const end = packed.ends[i]!;
  return end >= 0 ? end : -end - 1;
}

/** Where value i lies in `packed.bytes`: [start, end), or undefined for a null value. */
export function valueBounds(packed: PackedRecords, i: number): [number, number] | undefined {
  const end = packed.ends[i]!;
  return end < 0 ? undefined : [valueEnd(packed, i - 1), end];
}

/** Value i as a Buffer over the packed bytes (no copy), or null. */
export function valueAt(packed: PackedRecords, i: number): Buffer | null {
  const bounds = valueBounds(packed, i);
  if (!bounds) return null;
  return Buffer.from(packed.bytes.buffer, packed.bytes.byteOffset + bounds[0], bounds[1] - bounds[0]);
}

/** Record i of a partition's packed records, as the source delivered it. */
export function recordAt(packed: PackedRecords, partition: number, i: number): SourceRecord {
  return { partition, offset: packed.offsets[i]!, timestampMs: packed.timestampsMs[i]!, value: valueAt(packed, i) };
}

/** Every record of a partition's packed records, as the source delivered them (for tests and tools). */
export function unpackRecords(packed: PackedRecords, partition: number): SourceRecord[] {
  return Array.from({ length: packed.offsets.length }, (_, i) => recordAt(packed, partition, i));
}
