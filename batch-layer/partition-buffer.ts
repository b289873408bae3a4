import type { DecodeResult, FieldValue } from '../core/events/decode-event.ts';
import type { PackedRecords } from '../core/source/packed-records.ts';
import type { AcceptedColumns, RejectedRecord, SegmentContent } from './segment-writer.ts';

/**
 * The records of one partition read since its last segment: offsets [startOffset,
 * endOffsetExclusive). The range starts where the previous segment (or gap marker) ended, so
 * offsets the source skipped without a record (transaction markers, compaction) are covered too.
 * Accepted records are kept column by column, as they are written, which keeps per-record
 * garbage (and GC time) low.
 */
export class PartitionBuffer {
  private accepted: AcceptedColumns;
  /** Accepted records handed out by `takeAccepted` since the last reset. */
  private takenAccepted = 0;
  private rejected: RejectedRecord[] = [];
  private bytes = 0;
  private firstAddedAtMs = 0;
  private start: number;
  private end: number;

  constructor(
    readonly partition: number,
    startOffset: number,
    private readonly fieldCount: number,
  ) {
    this.start = startOffset;
    this.end = startOffset;
    this.accepted = emptyColumns(fieldCount);
  }

  get startOffset(): number {
    return this.start;
  }

  /** The next offset expected; records below it are duplicates of ones already buffered or written. */
  get endOffsetExclusive(): number {
    return this.end;
  }

  get recordCount(): number {
    return this.takenAccepted + this.accepted.count + this.rejected.length;
  }

  /** Accepted records not yet handed out by `takeAccepted`. */
  get acceptedCount(): number {
    return this.accepted.count;
  }

  /** Accepted records handed out by `takeAccepted` since the last reset. */
  get takenAcceptedCount(): number {
    return this.takenAccepted;
  }

  get byteCount(): number {
    return this.bytes;
  }

  get isEmpty(): boolean {
    return this.end === this.start;
  }

  /** Milliseconds since the oldest buffered record arrived (0 when empty). */
  ageMs(nowMs: number): number {
    return this.isEmpty ? 0 : nowMs - this.firstAddedAtMs;
  }

  /**
   * Adds the records at or above the current end; returns how many were added. Values are decoded
   * straight from the packed bytes, with no Buffer or record object per record.
   */
  add(packed: PackedRecords, decode: (raw: string | null) => DecodeResult, nowMs: number): number {
    const { offsets, timestampsMs, ends, bytes } = packed;
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const { columns } = this.accepted;
    let added = 0;
    let start = 0;
    for (let i = 0; i < offsets.length; i++) {
      const offset = offsets[i]!;
      const end = ends[i]!;
      const isNull = end < 0;
      const valueStart = start;
      if (!isNull) start = end;
      if (offset < this.end) continue;
      if (this.isEmpty) this.firstAddedAtMs = nowMs;
      const decoded = decode(isNull ? null : buffer.toString('utf8', valueStart, end));
      if (decoded.ok) {
        this.accepted.offsets.push(offset);
        this.accepted.kafkaTimestampsMs.push(timestampsMs[i]!);
        const values = decoded.event.values;
        for (let f = 0; f < this.fieldCount; f++) columns[f]!.push(values[f]!);
        this.accepted.count++;
      } else {
        const raw = isNull ? null : Buffer.from(buffer.subarray(valueStart, end));
        this.rejected.push({ offset, kafkaTimestampMs: timestampsMs[i]!, raw, reason: decoded.reason, message: decoded.message });
      }
      this.bytes += isNull ? 0 : end - valueStart;
      this.end = offset + 1;
      added++;
    }
    return added;
  }

  /**
   * Hands out the accepted records so far (to be written ahead, SegmentWriter.appendStaged);
   * `content()` then holds only those accepted after them.
   */
  takeAccepted(): AcceptedColumns {
    const taken = this.accepted;
    this.accepted = emptyColumns(this.fieldCount);
    this.takenAccepted += taken.count;
    return taken;
  }

  content(): SegmentContent {
    return { partition: this.partition, firstOffset: this.start, endOffsetExclusive: this.end, accepted: this.accepted, rejected: this.rejected };
  }

  /** Empties the buffer; the next segment starts at `startOffset`. */
  reset(startOffset: number): void {
    this.accepted = emptyColumns(this.fieldCount);
    this.takenAccepted = 0;
    this.rejected = [];
    this.bytes = 0;
    this.start = startOffset;
    this.end = startOffset;
  }
}

function emptyColumns(fieldCount: number): AcceptedColumns {
  return { count: 0, offsets: [], kafkaTimestampsMs: [], columns: Array.from({ length: fieldCount }, () => [] as FieldValue[]) };
}
