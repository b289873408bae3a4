import type { DuckDBDataChunk } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';

/** The column types ColumnChunkWriter writes, as DuckDB names them. */
export type ChunkColumnType = 'VARCHAR' | 'BOOLEAN' | 'INTEGER' | 'BIGINT' | 'DOUBLE';

/** JS values per column type; null is SQL NULL. */
export interface ChunkColumnValue {
  VARCHAR: string;
  BOOLEAN: boolean;
  INTEGER: number;
  BIGINT: bigint;
  DOUBLE: number;
}

/** Bytes of a duckdb_string_t: a uint32 length, then up to 12 bytes inline (or a prefix and a pointer). */
const STRING_BYTES = 16;
const STRING_INLINE_BYTES = 12;

/**
 * Fills the columns of a DuckDB data chunk from JS arrays with a few native calls per column,
 * instead of the generic DuckDBDataChunk.setColumnValues (a native call per string, a bigint
 * per validity bit): fixed-width values are gathered in a typed array and copied once, and so
 * are strings short enough to live inline in their 16-byte slot (ASCII, at most 12 bytes);
 * only longer strings take a native call each.
 *
 * Contract: the chunk is new or reset (every row valid) and already sized to the rows written;
 * a column is written once per chunk. The writer keeps scratch buffers of one vector's size
 * and is meant to be reused, on one thread.
 */
export class ColumnChunkWriter {
  readonly maxRows = duckdb.vector_size();
  private readonly scratch = new ArrayBuffer(this.maxRows * STRING_BYTES);
  private readonly bytes = new Uint8Array(this.scratch);
  private readonly int32 = new Int32Array(this.scratch);
  private readonly uint32 = new Uint32Array(this.scratch);
  private readonly float64 = new Float64Array(this.scratch);
  private readonly bigint64 = new BigInt64Array(this.scratch);
  /** One bit per row, little-endian 64-bit words, as DuckDB's validity mask. */
  private readonly validity = new Uint8Array(Math.ceil(this.maxRows / 64) * 8);
  /** Rows of the column being written marked NULL in `validity`. */
  private nullCount = 0;

  /** Writes `values[from..to)` into rows 0..to-from of column `column` of the chunk. */
  write<T extends ChunkColumnType>(chunk: DuckDBDataChunk, column: number, type: T, values: ArrayLike<ChunkColumnValue[T] | null>, from: number, to: number): void {
    const rows = this.rowsOf(from, to);
    const vector = duckdb.data_chunk_get_vector(chunk.chunk, column);
    this.nullCount = 0;
    if (type === 'VARCHAR') this.writeStrings(vector, values as ArrayLike<string | null>, from, rows);
    else duckdb.copy_data_to_vector(vector, 0, this.scratch, 0, this.gather(type, values, from, rows));
    this.writeValidity(vector, rows);
  }

  /**
   * Writes text given as UTF-8 bytes, `values[from..to)`, into a VARCHAR column: one native call
   * per value and no JavaScript string. The caller vouches that the bytes are UTF-8.
   */
  writeUtf8(chunk: DuckDBDataChunk, column: number, values: ArrayLike<Uint8Array | null>, from: number, to: number): void {
    const rows = this.rowsOf(from, to);
    const vector = duckdb.data_chunk_get_vector(chunk.chunk, column);
    this.nullCount = 0;
    for (let i = 0; i < rows; i++) {
      const value = values[from + i]!;
      if (value === null) this.setNull(i);
      else duckdb.vector_assign_string_element_len(vector, i, value);
    }
    this.writeValidity(vector, rows);
  }

  /**
   * Copies the first `rows` values of a column already laid out as DuckDB's vector (`data` from
   * byte 0, `rowBytes` per row) into column `column`; a row whose `nulls` byte is 1 is NULL.
   */
  writeLayout(chunk: DuckDBDataChunk, column: number, data: ArrayBuffer, rowBytes: number, rows: number, nulls?: Uint8Array): void {
    this.rowsOf(0, rows);
    const vector = duckdb.data_chunk_get_vector(chunk.chunk, column);
    duckdb.copy_data_to_vector(vector, 0, data, 0, rows * rowBytes);
    this.nullCount = 0;
    if (nulls) for (let i = 0; i < rows; i++) if (nulls[i] === 1) this.setNull(i);
    this.writeValidity(vector, rows);
  }

  /** Sets one row of a VARCHAR column to text given as UTF-8 bytes (one native call); the caller vouches for the bytes. */
  assignUtf8(chunk: DuckDBDataChunk, column: number, row: number, value: Uint8Array): void {
    duckdb.vector_assign_string_element_len(duckdb.data_chunk_get_vector(chunk.chunk, column), row, value);
  }

  private rowsOf(from: number, to: number): number {
    const rows = to - from;
    if (rows < 0 || rows > this.maxRows) throw new RangeError(`a chunk column holds 0 to ${this.maxRows} rows, not ${rows}`);
    return rows;
  }

  /** The NULLs of the column just written, if it had any. */
  private writeValidity(vector: duckdb.Vector, rows: number): void {
    if (this.nullCount === 0) return;
    duckdb.vector_ensure_validity_writable(vector);
    duckdb.copy_data_to_vector_validity(vector, 0, this.validity.buffer, 0, Math.ceil(rows / 64) * 8);
  }

  /** Copies fixed-width values into the scratch buffer (NULLs into `validity`); returns their byte count. */
  private gather(type: Exclude<ChunkColumnType, 'VARCHAR'>, values: ArrayLike<unknown>, from: number, rows: number): number {
    switch (type) {
      case 'DOUBLE':
        for (let i = 0; i < rows; i++) {
          const value = values[from + i] as number | null;
          if (value === null) this.setNull(i);
          else this.float64[i] = value;
        }
        return rows * 8;
      case 'INTEGER':
        for (let i = 0; i < rows; i++) {
          const value = values[from + i] as number | null;
          if (value === null) this.setNull(i);
          else this.int32[i] = value;
        }
        return rows * 4;
      case 'BIGINT':
        for (let i = 0; i < rows; i++) {
          const value = values[from + i] as bigint | null;
          if (value === null) this.setNull(i);
          else this.bigint64[i] = value;
        }
        return rows * 8;
      case 'BOOLEAN':
        for (let i = 0; i < rows; i++) {
          const value = values[from + i] as boolean | null;
          if (value === null) this.setNull(i);
          else this.bytes[i] = value ? 1 : 0;
        }
        return rows;
    }
  }

  /**
   * Short ASCII strings are laid out inline in the scratch buffer and copied in one go (their
   * slots zero-padded, as DuckDB compares inline strings by their 16 bytes); the others are
   * assigned one by one afterwards, over the empty slot the copy left for them.
   */
  private writeStrings(vector: duckdb.Vector, values: ArrayLike<string | null>, from: number, rows: number): void {
    const { bytes, uint32 } = this;
    bytes.fill(0, 0, rows * STRING_BYTES);
    let assigned: number[] | undefined;
    for (let i = 0; i < rows; i++) {
      const value = values[from + i]!;
      if (value === null) {
        this.setNull(i);
        continue;
      }
      const length = value.length;
      const at = i * STRING_BYTES + 4;
      let ascii = length <= STRING_INLINE_BYTES;
      for (let c = 0; ascii && c < length; c++) {
        const code = value.charCodeAt(c);
        if (code < 0x80) bytes[at + c] = code;
        else ascii = false;
      }
      if (ascii) uint32[i * 4] = length;
      else {
        bytes.fill(0, at, at + STRING_INLINE_BYTES);
        (assigned ??= []).push(i);
      }
    }
    duckdb.copy_data_to_vector(vector, 0, this.scratch, 0, rows * STRING_BYTES);
    if (assigned) for (const i of assigned) duckdb.vector_assign_string_element(vector, i, values[from + i]!);
  }

  private setNull(row: number): void {
    if (this.nullCount++ === 0) this.validity.fill(0xff);
    const byte = row >> 3;
    this.validity[byte] = this.validity[byte]! & ~(1 << (row & 7));
  }
}
