import { BIGINT, BOOLEAN, DuckDBDataChunk, INTEGER, TIMESTAMP, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import { ColumnChunkWriter } from '../core/duckdb/column-chunk-writer.ts';
import { DUCKDB_TYPES } from '../core/duckdb/column-types.ts';
import { CanonicalEventReader, ROW_BYTES, writeInt64 } from '../core/events/canonical-event-reader.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { EventSchema } from '../core/views/view-definition.ts';

/** The good events read in JavaScript: how many, and per partition the newest event time. */
export interface StagedEventCounts {
  readonly total: number;
  readonly newestEventMs: Map<number, number>;
}

/**
 * The decoded-events table of one micro-batch (`_row`, `_partition`, `_offset`, `_kafka_ts`, the
 * schema's fields, `_fast`, `_general`), and the JavaScript way into it: records in the canonical form
 * (CanonicalEventReader) go from their bytes straight into the table's columns, a data chunk at a
 * time, with no JSON text for DuckDB to read. Records the reader declines are the caller's to
 * stage raw, for the SQL decoder (whose rows join the same table).
 *
 * Usage per micro-batch, on the staging connection: `begin` (the table anew, empty), `add` per
 * record, `finish` (or `abort`).
 */
export class EventStaging {
  private readonly reader: CanonicalEventReader | undefined;
  private readonly chunk: DuckDBDataChunk;
  private readonly writer = new ColumnChunkWriter();
  private readonly rows: Int32Array<ArrayBuffer>;
  private readonly partitions: Int32Array<ArrayBuffer>;
  /** `_offset` as int64, in int32 pairs. */
  private readonly offsets: Int32Array<ArrayBuffer>;
  /** `_kafka_ts` as int64 microseconds, in int32 pairs. */
  private readonly kafkaTs: Int32Array<ArrayBuffer>;
  private readonly trues: Uint8Array<ArrayBuffer>;
  private readonly falses: Uint8Array<ArrayBuffer>;
  private readonly qualified: string;
  private appender: DuckDBAppender | undefined;
  /** Rows read into the chunk and not yet appended. */
  private pending = 0;
  private total = 0;
  /** Per partition (indexed by its number; holes for none), the newest event time read. */
  private readonly newestMs: number[] = [];

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly catalog: string,
    private readonly table: string,
    private readonly schema: EventSchema,
  ) {
    const capacity = this.writer.maxRows;
    this.reader = CanonicalEventReader.supports(schema) ? new CanonicalEventReader(schema, capacity) : undefined;
    this.chunk = DuckDBDataChunk.create([INTEGER, INTEGER, BIGINT, TIMESTAMP, ...schema.fields.map((f) => DUCKDB_TYPES[f.type]), BOOLEAN, BOOLEAN]);
    this.rows = new Int32Array(capacity);
    this.partitions = new Int32Array(capacity);
    this.offsets = new Int32Array(capacity * 2);
    this.kafkaTs = new Int32Array(capacity * 2);
    this.trues = new Uint8Array(capacity).fill(1);
    this.falses = new Uint8Array(capacity);
    this.qualified = `${quoteIdent(catalog)}.main.${quoteIdent(table)}`;
  }

  /** Creates the table anew (empty) and starts appending to it. */
  async begin(): Promise<void> {
    const fields = this.schema.fields.map((f) => `${quoteIdent(f.name)} ${f.type}`);
    await this.connection.run(
      `CREATE OR REPLACE TABLE ${this.qualified} (_row INTEGER, _partition INTEGER, _offset BIGINT, _kafka_ts TIMESTAMP, ${fields.join(', ')}, _fast BOOLEAN, _general BOOLEAN)`,
    );
    this.pending = 0;
    this.total = 0;
    this.newestMs.length = 0;
    this.reader?.clearLongStrings();
    if (this.reader) this.appender = await this.connection.createAppender(this.table, 'main', this.catalog);
  }

  /**
   * Adds the record `text[start..end)` (UTF-8, as the caller vouches) as row `row` of the
   * micro-batch if the reader takes it; false leaves it to the caller.
   */
  add(text: Uint8Array, start: number, end: number, row: number, partition: number, offset: number, kafkaTsMs: number): boolean {
    const { reader } = this;
    if (!reader || !reader.read(text, start, end, this.pending)) return false;
    const at = this.pending;
    this.rows[at] = row;
    this.partitions[at] = partition;
    writeInt64(this.offsets, at, offset);
    writeInt64(this.kafkaTs, at, Math.trunc(kafkaTsMs) * 1000);
    const ms = reader.timestampsMs[at]!;
    if (!(this.newestMs[partition]! >= ms)) this.newestMs[partition] = ms;
    this.total++;
    if (++this.pending === reader.capacity) this.flush();
    return true;
  }

  /** Appends what is pending and closes the appender (committing the rows); returns what was added. */
  finish(): StagedEventCounts {
    try {
      this.flush();
    } finally {
      this.appender?.closeSync();
      this.appender = undefined;
    }
    const newestEventMs = new Map<number, number>();
    this.newestMs.forEach((ms, partition) => newestEventMs.set(partition, ms));
    return { total: this.total, newestEventMs };
  }

  /** Drops what the appender holds (the table is made anew by the next `begin`). */
  abort(): void {
    if (!this.appender) return;
    this.appender.clear();
    this.appender.closeSync();
    this.appender = undefined;
  }

  private flush(): void {
    const { reader, chunk, writer, pending } = this;
    if (!reader || !this.appender || pending === 0) return;
    chunk.reset();
    chunk.rowCount = pending;
    writer.writeLayout(chunk, 0, this.rows.buffer, 4, pending);
    writer.writeLayout(chunk, 1, this.partitions.buffer, 4, pending);
    writer.writeLayout(chunk, 2, this.offsets.buffer, 8, pending);
    writer.writeLayout(chunk, 3, this.kafkaTs.buffer, 8, pending);
    reader.columns.forEach((column, f) => {
      writer.writeLayout(chunk, 4 + f, column.data, ROW_BYTES[column.type], pending, column.nulls);
      // A row past `pending` is a record declined after its long string was noted.
      for (const [row, bytes] of column.longStrings) if (row < pending) writer.assignUtf8(chunk, 4 + f, row, bytes);
    });
    const fields = reader.columns.length;
    writer.writeLayout(chunk, 4 + fields, this.trues.buffer, 1, pending);
    writer.writeLayout(chunk, 5 + fields, this.falses.buffer, 1, pending);
    this.appender.appendDataChunk(chunk);
    reader.clearLongStrings();
    this.pending = 0;
  }
}
