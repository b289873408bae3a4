import { mkdirSync, readdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { SourceError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { packRecords } from './packed-records.ts';
import type { RecordSource, SourceRecord, SourceSubscription, SubscribeOptions } from './record-source.ts';

/**
 * The single-node event log (DESIGN.md, "Single-node default"): one partition, sequential
 * offsets, durable before `append` resolves. Segment files `<first offset>.log` hold records
 *
 *   u32 payload length | u32 crc32(timestamp, payload) | f64 timestamp ms | payload
 *
 * On open, every segment is scanned; a torn or corrupt tail (a crash during an append that was
 * never acknowledged) is cut off, so offsets stay dense and every acknowledged record survives.
 * Concurrent appends are committed together: one write and one fdatasync per group.
 */
const HEADER_BYTES = 16;
const SPARSE_EVERY = 1_000;
const READ_CHUNK_BYTES = 1 << 20;
const MAX_RECORDS_PER_BATCH = 10_000;
const FILE_NAME = /^(\d{20})\.log$/;

interface Segment {
  readonly baseOffset: number;
  readonly path: string;
  endOffset: number;
  sizeBytes: number;
  /** Byte positions of every SPARSE_EVERY-th record: sparse[i] is the position of baseOffset + i * SPARSE_EVERY. */
  readonly sparse: number[];
}

interface PendingAppend {
  readonly values: readonly Buffer[];
  readonly timestampMs: number;
  readonly resolve: (range: { firstOffset: number; endOffsetExclusive: number }) => void;
  readonly reject: (error: Error) => void;
}

export class LocalLog implements RecordSource {
  readonly topic: string;
  private readonly segments: Segment[];
  private writer: FileHandle;
  private pending: PendingAppend[] = [];
  private flushing = false;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly dir: string,
    topic: string,
    segments: Segment[],
    writer: FileHandle,
    private readonly segmentBytes: number,
    private readonly logger: Logger,
  ) {
    this.topic = topic;
    this.segments = segments;
    this.writer = writer;
  }

  static async open(dir: string, options: { topic?: string; segmentBytes?: number; logger: Logger }): Promise<LocalLog> {
    mkdirSync(dir, { recursive: true });
    const names = readdirSync(dir).filter((n) => FILE_NAME.test(n)).sort();
    const segments: Segment[] = [];
    for (const name of names) {
      const baseOffset = Number(FILE_NAME.exec(name)![1]);
      const expected = segments.at(-1)?.endOffset ?? baseOffset;
      if (baseOffset !== expected) throw new SourceError(`local log ${dir}: segment ${name} starts at ${baseOffset}, expected ${expected}`);
      segments.push(await scanSegment(join(dir, name), baseOffset, options.logger));
    }
    if (segments.length === 0) segments.push(emptySegment(dir, 0));
    const writer = await open(segments.at(-1)!.path, 'a');
    return new LocalLog(dir, options.topic ?? 'events', segments, writer, options.segmentBytes ?? 64 * 1024 * 1024, options.logger);
  }

  /** The offset the next appended record gets. */
  get endOffset(): number {
    return this.segments.at(-1)!.endOffset;
  }

  async partitionCount(): Promise<number> {
    return 1;
  }

  async highWatermarks(): Promise<Map<number, number>> {
    return new Map([[0, this.endOffset]]);
  }

  /** Appends records; resolves once they are on disk, with their offsets. */
  append(values: readonly Buffer[], timestampMs = Date.now()): Promise<{ firstOffset: number; endOffsetExclusive: number }> {
    if (this.closed) return Promise.reject(new SourceError('the local log is closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ values, timestampMs, resolve, reject });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const group = this.pending;
        this.pending = [];
        try {
          await this.writeGroup(group);
        } catch (error) {
          const failure = new SourceError(`cannot append to the local log: ${(error as Error).message}`, { retriable: true, cause: error });
          for (const append of group) append.reject(failure);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async writeGroup(group: readonly PendingAppend[]): Promise<void> {
    if (this.segments.at(-1)!.sizeBytes >= this.segmentBytes) await this.roll();
    const segment = this.segments.at(-1)!;
    const buffers: Buffer[] = [];
    const ranges: { firstOffset: number; endOffsetExclusive: number }[] = [];
    let offset = segment.endOffset;
    let position = segment.sizeBytes;
    const sparseAdded: number[] = [];
    for (const append of group) {
      const firstOffset = offset;
      for (const value of append.values) {
        if ((offset - segment.baseOffset) % SPARSE_EVERY === 0) sparseAdded.push(position);
        const record = encodeRecord(value, append.timestampMs);
        buffers.push(record);
        position += record.length;
        offset++;
      }
      ranges.push({ firstOffset, endOffsetExclusive: offset });
    }
    await this.writer.writev(buffers);
    await this.writer.datasync();
    // Only now are the records readable and acknowledged.
    segment.sparse.push(...sparseAdded);
    segment.endOffset = offset;
    segment.sizeBytes = position;
    group.forEach((append, i) => append.resolve(ranges[i]!));
    for (const wake of [...this.waiters]) wake();
  }

  private async roll(): Promise<void> {
    await this.writer.close();
    const next = emptySegment(this.dir, this.endOffset);
    this.segments.push(next);
    this.writer = await open(next.path, 'a');
    const dirHandle = await open(this.dir, 'r');
    await dirHandle.sync().finally(() => dirHandle.close());
  }

  /** Reads up to `maxRecords` records from `fromOffset`; empty at the end of the log. */
  async read(fromOffset: number, maxRecords = MAX_RECORDS_PER_BATCH): Promise<SourceRecord[]> {
    const segment = this.segments.find((s) => fromOffset >= s.baseOffset && fromOffset < s.endOffset);
    if (!segment) return [];
    const endOffset = segment.endOffset;
    const sparseIndex = Math.floor((fromOffset - segment.baseOffset) / SPARSE_EVERY);
    let offset = segment.baseOffset + sparseIndex * SPARSE_EVERY;
    let position = segment.sparse[sparseIndex]!;
    const records: SourceRecord[] = [];
    const file = await open(segment.path, 'r');
    try {
      while (offset < endOffset && records.length < maxRecords) {
        // As large as what is there to read, up to a chunk: a fresh 1 MB per read of a few
        // records, at a read every few ms, made V8 run a full GC per micro-batch (external memory
        // pressure). The records' values are views of it, so it is never reused.
        const chunk = Buffer.allocUnsafe(Math.max(HEADER_BYTES, Math.min(READ_CHUNK_BYTES, segment.sizeBytes - position)));
        const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
        let at = 0;
        while (offset < endOffset && records.length < maxRecords && at + HEADER_BYTES <= bytesRead) {
          const length = chunk.readUInt32LE(at);
          if (at + HEADER_BYTES + length > bytesRead) break;
          if (offset >= fromOffset) {
            const value = chunk.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
            records.push({ partition: 0, offset, timestampMs: chunk.readDoubleLE(at + 8), value });
          }
          at += HEADER_BYTES + length;
          offset++;
        }
        if (at === 0) {
          // One record larger than the chunk: read it alone.
          const header = Buffer.alloc(HEADER_BYTES);
          await file.read(header, 0, HEADER_BYTES, position);
          const value = Buffer.alloc(header.readUInt32LE(0));
          await file.read(value, 0, value.length, position + HEADER_BYTES);
          if (offset >= fromOffset) records.push({ partition: 0, offset, timestampMs: header.readDoubleLE(8), value });
          at = HEADER_BYTES + value.length;
          offset++;
        }
        position += at;
      }
    } finally {
      await file.close();
    }
    return records;
  }

  async subscribe(options: SubscribeOptions): Promise<SourceSubscription> {
    let running = true;
    // The one partition is read while selected; (de)selecting it waits for the batch in hand.
    let selected = options.selectedPartitions?.includes(0) ?? true;
    let next = selected ? await this.startAt(options) : 0;
    let wake: (() => void) | undefined;
    let reading: Promise<void> = Promise.resolve();
    const loop = (async () => {
      while (running) {
        const records = selected ? await this.read(next) : [];
        if (records.length > 0) {
          reading = options.onBatch({ topic: this.topic, partition: 0, packed: packRecords(records), highWatermark: this.endOffset });
          await reading;
          next = records.at(-1)!.offset + 1;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.waiters.add(resolve);
          if ((selected && this.endOffset > next) || !running) resolve();
        });
        this.waiters.delete(wake!);
      }
    })().catch((error) => this.logger.error({ err: error }, 'local log subscriber stopped'));
    return {
      assignedPartitions: () => [0],
      select: async (partitions) => {
        const wanted = partitions.includes(0);
        if (wanted === selected) return;
        selected = false;
        // Ignored: the read loop logs its own failure; here it is only waited for.
        await reading.catch(() => undefined);
        if (wanted) {
          next = await this.startAt(options);
          selected = true;
          wake?.();
        } else {
          await options.onRevoke?.([0]);
        }
      },
      stop: async () => {
        running = false;
        wake?.();
        await loop;
      },
    };
  }

  /** The subscriber's start offset, moved up to the first offset kept (a gap, reported). */
  private async startAt(options: SubscribeOptions): Promise<number> {
    const next = await options.startOffset(0);
    const first = this.segments[0]!.baseOffset;
    if (next >= first) return next;
    options.onGap?.({ partition: 0, fromOffset: next, toOffsetExclusive: first });
    return first;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing || this.pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await this.writer.close();
  }
}

function encodeRecord(value: Buffer, timestampMs: number): Buffer {
  const record = Buffer.allocUnsafe(HEADER_BYTES + value.length);
  record.writeUInt32LE(value.length, 0);
  record.writeDoubleLE(timestampMs, 8);
  value.copy(record, HEADER_BYTES);
  record.writeUInt32LE(crc32(record.subarray(8)), 4);
  return record;
}

function emptySegment(dir: string, baseOffset: number): Segment {
  return { baseOffset, path: join(dir, `${String(baseOffset).padStart(20, '0')}.log`), endOffset: baseOffset, sizeBytes: 0, sparse: [] };
}

/** Reads a segment's records to rebuild its index; cuts a torn or corrupt tail off the file. */
async function scanSegment(path: string, baseOffset: number, logger: Logger): Promise<Segment> {
  const segment: Segment = { baseOffset, path, endOffset: baseOffset, sizeBytes: 0, sparse: [] };
  const file = await open(path, 'r+');
  try {
    const { size } = await file.stat();
    const data = Buffer.alloc(size);
    await file.read(data, 0, size, 0);
    let at = 0;
    while (at + HEADER_BYTES <= size) {
      const length = data.readUInt32LE(at);
      const end = at + HEADER_BYTES + length;
      if (end > size || crc32(data.subarray(at + 8, end)) !== data.readUInt32LE(at + 4)) break;
      if ((segment.endOffset - baseOffset) % SPARSE_EVERY === 0) segment.sparse.push(at);
      segment.endOffset++;
      at = end;
    }
    if (at < size) {
      logger.warn({ path, validBytes: at, sizeBytes: size }, 'local log: cutting off a torn tail left by a crash');
      await file.truncate(at);
      await file.sync();
    }
    segment.sizeBytes = at;
  } finally {
    await file.close();
  }
  return segment;
}
