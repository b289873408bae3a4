import { DOUBLE, DuckDBDataChunk, INTEGER, VARCHAR, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { isUtf8 } from 'node:buffer';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { RecordRun } from './record-run.ts';

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;
/** Chunks staged between two turns of the event loop (a few milliseconds of work). */
const CHUNKS_PER_TURN = 8;

/**
 * Copies records into a DuckDB table without decoding them in JavaScript: the value bytes go in
 * as text (checked to be UTF-8, never turned into a JavaScript string), the partition and offset
 * as plain numbers, `_row` as the record's index in the micro-batch so that rows DuckDB cannot
 * decode can be found again. A value that is null or not UTF-8 is staged as NULL (the JavaScript
 * decoder then reads its bytes). Offsets travel as DOUBLE (exact below 2^53).
 *
 * The data chunk is filled through DuckDB's C API directly: one copy per numeric column, one call
 * per value, and no object per record (node-api's generic vectors cost a value object, a cache
 * entry and a validity update per record).
 *
 * The table lives in the decoder's own database (see MicroBatchDecoder), and `load` runs on a
 * connection of its own: the JavaScript thread stages one micro-batch while DuckDB decodes the
 * one before on the decoder's connection.
 */
export class RawStaging {
  private readonly chunk = DuckDBDataChunk.create([INTEGER, INTEGER, DOUBLE, VARCHAR]);
  private readonly rows = new Int32Array(CHUNK_ROWS);
  private readonly partitions = new Int32Array(CHUNK_ROWS);
  private readonly offsets = new Float64Array(CHUNK_ROWS);
  /** Validity of the raw column, one bit per row (DuckDB's layout: little-endian 64-bit words). */
  private readonly rawValid = new Uint8Array(CHUNK_ROWS / 8);
  private readonly qualified: string;
  /** The table exists and is empty (`resetSql` ran since the last load): no reset needed first. */
  private empty = false;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly catalog: string,
    private readonly table: string,
  ) {
    this.qualified = `${quoteIdent(catalog)}.main.${quoteIdent(table)}`;
  }

  /** The staging table as a relation with `raw` as text: NULL for a null value or invalid UTF-8. */
  relation(): string {
    return `(SELECT _row, _partition, _offset::BIGINT AS _offset, raw FROM ${this.qualified})`;
  }

  /**
   * Empties the table, by creating it anew: DuckDB keeps the memory of deleted rows until a
   * checkpoint, which in-memory databases never get.
   */
  resetSql(): string {
    return `CREATE OR REPLACE TABLE ${this.qualified} (_row INTEGER, _partition INTEGER, _offset DOUBLE, raw VARCHAR)`;
  }

  /** The caller ran `resetSql` (and it succeeded): the next load can skip that round trip. */
  emptied(): void {
    this.empty = true;
  }

  /** Replaces the table's rows with the records of `runs` (committed when it resolves); `_row` counts across runs. */
  async load(runs: readonly RecordRun[]): Promise<void> {
    // Unless known to be empty, anew: a load or decode that failed half-way leaves rows behind.
    if (!this.empty) await this.connection.run(this.resetSql());
    this.empty = false;
    const appender = await this.connection.createAppender(this.table, 'main', this.catalog);
    try {
      let rawVector = this.startChunk();
      let at = 0;
      let anyNull = false;
      let chunks = 0;
      let row = 0;
      for (const run of runs) {
        const { partition } = run;
        const { offsets, ends, bytes } = run.packed;
        // Value i is bytes[start, ends[i]), start being where value i-1 ended (see PackedRecords).
        const before = run.from === 0 ? 0 : ends[run.from - 1]!;
        let start = before >= 0 ? before : -before - 1;
        for (let i = run.from; i < run.to; i++, at++, row++) {
          if (at === CHUNK_ROWS) {
            this.appendChunk(appender, at, anyNull);
            rawVector = this.startChunk();
            at = 0;
            anyNull = false;
            // Staging runs beside the writer's commit and the Kafka fetches, which wait for this thread.
            if (++chunks % CHUNKS_PER_TURN === 0) await yieldToEventLoop();
          }
          this.rows[at] = row;
          this.partitions[at] = partition;
          this.offsets[at] = offsets[i]!;
          const end = ends[i]!;
          const value = end >= 0 ? bytes.subarray(start, end) : undefined;
          start = end >= 0 ? end : -end - 1;
          if (value !== undefined && isUtf8(value)) {
            duckdb.vector_assign_string_element_len(rawVector, at, value);
          } else {
            this.rawValid[at >>> 3]! &= ~(1 << (at & 7));
            anyNull = true;
          }
        }
      }
      if (at > 0) this.appendChunk(appender, at, anyNull);
    } catch (error) {
      appender.clear();
      throw error;
    } finally {
      appender.closeSync();
    }
  }

  /** Empties the chunk for the next rows; returns the raw column's vector. */
  private startChunk(): duckdb.Vector {
    duckdb.data_chunk_reset(this.chunk.chunk);
    this.rawValid.fill(0xff);
    return duckdb.data_chunk_get_vector(this.chunk.chunk, 3);
  }

  /** Copies the numeric columns (and the raw column's NULLs) in and hands `rows` rows to the appender. */
  private appendChunk(appender: DuckDBAppender, rows: number, anyNull: boolean): void {
    const raw = this.chunk.chunk;
    const copy = (column: number, values: Int32Array | Float64Array) =>
      duckdb.copy_data_to_vector(duckdb.data_chunk_get_vector(raw, column), 0, values.buffer as ArrayBuffer, values.byteOffset, rows * values.BYTES_PER_ELEMENT);
    copy(0, this.rows);
    copy(1, this.partitions);
    copy(2, this.offsets);
    if (anyNull) {
      const vector = duckdb.data_chunk_get_vector(raw, 3);
      duckdb.vector_ensure_validity_writable(vector);
      duckdb.copy_data_to_vector_validity(vector, 0, this.rawValid.buffer as ArrayBuffer, 0, this.rawValid.byteLength);
    }
    duckdb.data_chunk_set_size(raw, rows);
    appender.appendDataChunk(this.chunk);
  }
}
