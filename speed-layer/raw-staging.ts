import { DOUBLE, DuckDBDataChunk, INTEGER, VARCHAR, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import duckdb from '@duckdb/node-bindings';
import { isAscii, isUtf8 } from 'node:buffer';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { RecordRun } from './record-run.ts';

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;
/** Chunks staged between two turns of the event loop (a few milliseconds of work). */
const CHUNKS_PER_TURN = 8;
/** Records per piece of text (see RawStaging). */
const PIECE_RECORDS = 64;

/** The columns of the staged records, in table order. */
const ROW = 0;
const PARTITION = 1;
const OFFSET = 2;
const PIECE = 3;
const START = 4;
const LENGTH = 5;
const RAW = 6;

/**
 * Copies records into DuckDB without decoding them in JavaScript: the value bytes go in as text
 * (checked to be UTF-8, never turned into a JavaScript string), the partition and offset as plain
 * numbers, `_row` as the record's index in the micro-batch so that rows DuckDB cannot decode can
 * be found again. A value that is null or not UTF-8 is staged as NULL (the JavaScript decoder then
 * reads its bytes). Offsets travel as DOUBLE (exact below 2^53).
 *
 * The JavaScript thread also runs the Kafka client, so staging costs it as little as it can: the
 * chunks are filled through DuckDB's C API (one copy per numeric column), and the values of a run
 * that is all ASCII (JSON.stringify's usual output) go in as pieces of text of PIECE_RECORDS
 * values each, as they lie in the packed bytes: one call per piece instead of one per value. Each
 * record then says where in which piece its value is (`_piece`, `_start`, `_length`), and DuckDB
 * cuts it out (for ASCII text a character position is a byte position; only there is `substr`
 * fast). Other runs stage each value in `raw` (`_piece` -1).
 *
 * The tables live in the decoder's own database (see MicroBatchDecoder), and `load` runs on a
 * connection of its own: the JavaScript thread stages one micro-batch while DuckDB decodes the
 * one before on the decoder's connection.
 */
export class RawStaging {
  private readonly chunk = DuckDBDataChunk.create([INTEGER, INTEGER, DOUBLE, INTEGER, INTEGER, INTEGER, VARCHAR]);
  private readonly pieceChunk = DuckDBDataChunk.create([INTEGER, VARCHAR]);
  private readonly rows = new Int32Array(CHUNK_ROWS);
  private readonly partitions = new Int32Array(CHUNK_ROWS);
  private readonly offsets = new Float64Array(CHUNK_ROWS);
  private readonly pieces = new Int32Array(CHUNK_ROWS);
  private readonly starts = new Int32Array(CHUNK_ROWS);
  private readonly lengths = new Int32Array(CHUNK_ROWS);
  private readonly pieceIds = new Int32Array(CHUNK_ROWS);
  /** Validity of the raw column, one bit per row (DuckDB's layout: little-endian 64-bit words). */
  private readonly rawValid = new Uint8Array(CHUNK_ROWS / 8);
  private readonly qualified: string;
  private readonly qualifiedPieces: string;
  /** The tables exist and are empty (`resetSql` ran since the last load): no reset needed first. */
  private empty = false;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly catalog: string,
    private readonly table: string,
  ) {
    this.qualified = `${quoteIdent(catalog)}.main.${quoteIdent(table)}`;
    this.qualifiedPieces = `${quoteIdent(catalog)}.main.${quoteIdent(`${table}_pieces`)}`;
  }

  /** The staged records as a relation with `raw` as text: NULL for a null value or invalid UTF-8. */
  relation(): string {
    return `(SELECT r._row, r._partition, r._offset::BIGINT AS _offset,
        CASE WHEN r._piece < 0 THEN r.raw WHEN r._length >= 0 THEN substr(p.text, r._start, r._length) END AS raw
      FROM ${this.qualified} r LEFT JOIN ${this.qualifiedPieces} p ON p._piece = r._piece)`;
  }

  /**
   * Empties the tables, by creating them anew: DuckDB keeps the memory of deleted rows until a
   * checkpoint, which in-memory databases never get.
   */
  resetSql(): string {
    return [
      `CREATE OR REPLACE TABLE ${this.qualified} (_row INTEGER, _partition INTEGER, _offset DOUBLE, _piece INTEGER, _start INTEGER, _length INTEGER, raw VARCHAR)`,
      `CREATE OR REPLACE TABLE ${this.qualifiedPieces} (_piece INTEGER, text VARCHAR)`,
    ].join(';\n');
  }

  /** The caller ran `resetSql` (and it succeeded): the next load can skip that round trip. */
  emptied(): void {
    this.empty = true;
  }

  /** Replaces the staged records with those of `runs` (committed when it resolves); `_row` counts across runs. */
  async load(runs: readonly RecordRun[]): Promise<void> {
    // Unless known to be empty, anew: a load or decode that failed half-way leaves rows behind.
    if (!this.empty) await this.connection.run(this.resetSql());
    this.empty = false;
    const appender = await this.connection.createAppender(this.table, 'main', this.catalog);
    const pieceAppender = await this.connection.createAppender(`${this.table}_pieces`, 'main', this.catalog);
    try {
      const state = { at: 0, anyNull: false, row: 0, chunks: 0, piece: 0, pieceAt: 0 };
      this.startChunk();
      this.startPieceChunk();
      for (const run of runs) {
        const { partition } = run;
        const { offsets, ends, bytes } = run.packed;
        // Value i is bytes[start, ends[i]), start being where value i-1 ended (see PackedRecords).
        const endOf = (i: number) => (i < 0 ? 0 : ends[i]! >= 0 ? ends[i]! : -ends[i]! - 1);
        const ascii = run.to > run.from && isAscii(bytes.subarray(endOf(run.from - 1), endOf(run.to - 1)));
        let pieceStart = 0;
        for (let i = run.from; i < run.to; i++) {
          if (state.at === CHUNK_ROWS) {
            this.appendChunk(appender, state.at, state.anyNull);
            this.startChunk();
            state.at = 0;
            state.anyNull = false;
            // Staging runs beside the writer's commit and the Kafka fetches, which wait for this thread.
            if (++state.chunks % CHUNKS_PER_TURN === 0) await yieldToEventLoop();
          }
          const at = state.at++;
          const start = endOf(i - 1);
          const end = ends[i]!;
          this.rows[at] = state.row++;
          this.partitions[at] = partition;
          this.offsets[at] = offsets[i]!;
          if (ascii) {
            // A new piece every PIECE_RECORDS records of the run: it ends where its last value ends.
            if ((i - run.from) % PIECE_RECORDS === 0) {
              pieceStart = start;
              const last = Math.min(run.to, i + PIECE_RECORDS) - 1;
              this.addPiece(pieceAppender, state, bytes.subarray(start, endOf(last)));
            }
            this.pieces[at] = state.piece - 1;
            this.starts[at] = start - pieceStart + 1;
            this.lengths[at] = end >= 0 ? end - start : -1;
            this.rawValid[at >>> 3]! &= ~(1 << (at & 7));
            state.anyNull = true;
            continue;
          }
          this.pieces[at] = -1;
          const value = end >= 0 ? bytes.subarray(start, end) : undefined;
          if (value !== undefined && isUtf8(value)) {
            duckdb.vector_assign_string_element_len(duckdb.data_chunk_get_vector(this.chunk.chunk, RAW), at, value);
          } else {
            this.rawValid[at >>> 3]! &= ~(1 << (at & 7));
            state.anyNull = true;
          }
        }
      }
      if (state.at > 0) this.appendChunk(appender, state.at, state.anyNull);
      if (state.pieceAt > 0) this.appendPieceChunk(pieceAppender, state.pieceAt);
    } catch (error) {
      appender.clear();
      pieceAppender.clear();
      throw error;
    } finally {
      pieceAppender.closeSync();
      appender.closeSync();
    }
  }

  /** Adds one piece of text (ASCII bytes) as the next piece id. */
  private addPiece(appender: DuckDBAppender, state: { piece: number; pieceAt: number }, text: Uint8Array): void {
    if (state.pieceAt === CHUNK_ROWS) {
      this.appendPieceChunk(appender, state.pieceAt);
      state.pieceAt = 0;
    }
    if (state.pieceAt === 0) duckdb.data_chunk_reset(this.pieceChunk.chunk);
    this.pieceIds[state.pieceAt] = state.piece++;
    duckdb.vector_assign_string_element_len(duckdb.data_chunk_get_vector(this.pieceChunk.chunk, 1), state.pieceAt++, text);
  }

  private appendPieceChunk(appender: DuckDBAppender, rows: number): void {
    const raw = this.pieceChunk.chunk;
    duckdb.copy_data_to_vector(duckdb.data_chunk_get_vector(raw, 0), 0, this.pieceIds.buffer as ArrayBuffer, 0, rows * 4);
    duckdb.data_chunk_set_size(raw, rows);
    appender.appendDataChunk(this.pieceChunk);
  }

  /** Empties the record chunk for the next rows. */
  private startChunk(): void {
    duckdb.data_chunk_reset(this.chunk.chunk);
    this.rawValid.fill(0xff);
  }

  private startPieceChunk(): void {
    duckdb.data_chunk_reset(this.pieceChunk.chunk);
  }

  /** Copies the numeric columns (and the raw column's NULLs) in and hands `rows` rows to the appender. */
  private appendChunk(appender: DuckDBAppender, rows: number, anyNull: boolean): void {
    const raw = this.chunk.chunk;
    const copy = (column: number, values: Int32Array | Float64Array) =>
      duckdb.copy_data_to_vector(duckdb.data_chunk_get_vector(raw, column), 0, values.buffer as ArrayBuffer, values.byteOffset, rows * values.BYTES_PER_ELEMENT);
    copy(ROW, this.rows);
    copy(PARTITION, this.partitions);
    copy(OFFSET, this.offsets);
    copy(PIECE, this.pieces);
    copy(START, this.starts);
    copy(LENGTH, this.lengths);
    if (anyNull) {
      const vector = duckdb.data_chunk_get_vector(raw, RAW);
      duckdb.vector_ensure_validity_writable(vector);
      duckdb.copy_data_to_vector_validity(vector, 0, this.rawValid.buffer as ArrayBuffer, 0, this.rawValid.byteLength);
    }
    duckdb.data_chunk_set_size(raw, rows);
    appender.appendDataChunk(this.chunk);
  }
}
