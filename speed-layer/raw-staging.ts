import { BLOB, DOUBLE, DuckDBBlobValue, DuckDBDataChunk, INTEGER, type DuckDBConnection } from '@duckdb/node-api';
import type { SourceRecord } from '../core/source/record-source.ts';

/** The connection-private table a micro-batch's records are copied into, as raw bytes. */
export const RAW_STAGING_TABLE = 'speed_raw';

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;

/**
 * Copies records into DuckDB without decoding them in JavaScript: the value bytes go in as a BLOB
 * (no UTF-8 decoding, no JSON.parse), the partition and offset as plain numbers, `_row` as the
 * record's index in the micro-batch so that rows DuckDB cannot decode can be found again.
 * Offsets travel as DOUBLE (exact below 2^53) to avoid a BigInt per record.
 *
 * The table is TEMP, so it belongs to the writer connection and is invisible to queries.
 */
export class RawStaging {
  private readonly chunk = DuckDBDataChunk.create([INTEGER, INTEGER, DOUBLE, BLOB]);

  private constructor(private readonly connection: DuckDBConnection) {}

  static async create(connection: DuckDBConnection): Promise<RawStaging> {
    await connection.run(RawStaging.resetSql());
    return new RawStaging(connection);
  }

  /** The staging table as a relation with `raw` as text: NULL for a null value or invalid UTF-8. */
  static relation(): string {
    return `(SELECT _row, _partition, _offset::BIGINT AS _offset, try(decode(raw)) AS raw FROM temp.main.${RAW_STAGING_TABLE})`;
  }

  /** Stages `records`; the table must have been emptied (`resetSql`) since the last load. */
  async load(records: readonly SourceRecord[]): Promise<void> {
    const appender = await this.connection.createAppender(RAW_STAGING_TABLE, 'main', 'temp');
    try {
      for (let start = 0; start < records.length; start += CHUNK_ROWS) {
        this.fillChunk(records, start, Math.min(CHUNK_ROWS, records.length - start));
        appender.appendDataChunk(this.chunk);
      }
    } catch (error) {
      appender.clear();
      throw error;
    } finally {
      appender.closeSync();
    }
  }

  /**
   * Empties the table, by creating it anew: DuckDB keeps the memory of deleted rows until a
   * checkpoint, which temporary tables never get.
   */
  static resetSql(): string {
    return `CREATE OR REPLACE TEMP TABLE ${RAW_STAGING_TABLE} (_row INTEGER, _partition INTEGER, _offset DOUBLE, raw BLOB)`;
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
