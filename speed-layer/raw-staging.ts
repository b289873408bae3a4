import { BLOB, DOUBLE, DuckDBBlobValue, DuckDBDataChunk, INTEGER, type DuckDBConnection } from '@duckdb/node-api';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { SourceRecord } from '../core/source/record-source.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;
/** Chunks staged between two turns of the event loop (a few milliseconds of work). */
const CHUNKS_PER_TURN = 8;

/**
 * Copies records into a DuckDB table without decoding them in JavaScript: the value bytes go in
 * as a BLOB (no UTF-8 decoding, no JSON.parse), the partition and offset as plain numbers, `_row`
 * as the record's index in the micro-batch so that rows DuckDB cannot decode can be found again.
 * Offsets travel as DOUBLE (exact below 2^53) to avoid a BigInt per record.
 *
 * The table lives in the decoder's own database (see MicroBatchDecoder), and `load` runs on a
 * connection of its own: the JavaScript thread stages one micro-batch while DuckDB decodes the
 * one before on the decoder's connection.
 */
export class RawStaging {
  private readonly chunk = DuckDBDataChunk.create([INTEGER, INTEGER, DOUBLE, BLOB]);
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
    return `(SELECT _row, _partition, _offset::BIGINT AS _offset, try(decode(raw)) AS raw FROM ${this.qualified})`;
  }

  /**
   * Empties the table, by creating it anew: DuckDB keeps the memory of deleted rows until a
   * checkpoint, which in-memory databases never get.
   */
  resetSql(): string {
    return `CREATE OR REPLACE TABLE ${this.qualified} (_row INTEGER, _partition INTEGER, _offset DOUBLE, raw BLOB)`;
  }

  /** The caller ran `resetSql` (and it succeeded): the next load can skip that round trip. */
  emptied(): void {
    this.empty = true;
  }

  /** Replaces the table's rows with `records` (committed when it resolves). */
  async load(records: readonly SourceRecord[]): Promise<void> {
    // Unless known to be empty, anew: a load or decode that failed half-way leaves rows behind.
    if (!this.empty) await this.connection.run(this.resetSql());
    this.empty = false;
    const appender = await this.connection.createAppender(this.table, 'main', this.catalog);
    try {
      for (let start = 0, chunks = 1; start < records.length; start += CHUNK_ROWS, chunks++) {
        this.fillChunk(records, start, Math.min(CHUNK_ROWS, records.length - start));
        appender.appendDataChunk(this.chunk);
        // Staging runs beside the writer's commit and the Kafka fetches, which wait for this thread.
        if (chunks % CHUNKS_PER_TURN === 0) await yieldToEventLoop();
      }
    } catch (error) {
      appender.clear();
      throw error;
    } finally {
      appender.closeSync();
    }
  }

  private fillChunk(records: readonly SourceRecord[], start: number, rows: number): void {
    this.chunk.reset();
    this.chunk.rowCount = rows;
    const rowVector = this.chunk.getColumnVector(0);
    const partitionVector = this.chunk.getColumnVector(1);
    const offsetVector = this.chunk.getColumnVector(2);
    const rawVector = this.chunk.getColumnVector(3);
    for (let i = 0; i < rows; i++) {
      const record = records[start + i]!;
      rowVector.setItem(i, start + i);
      partitionVector.setItem(i, record.partition);
      offsetVector.setItem(i, record.offset);
      rawVector.setItem(i, record.value === null ? null : new DuckDBBlobValue(record.value));
    }
    rowVector.flush();
    partitionVector.flush();
    offsetVector.flush();
    rawVector.flush();
  }
}
