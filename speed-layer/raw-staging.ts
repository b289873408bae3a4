import { DOUBLE, DuckDBDataChunk, INTEGER, VARCHAR, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import { isAscii, isUtf8 } from 'node:buffer';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { ColumnChunkWriter } from '../core/duckdb/column-chunk-writer.ts';
import { valueEnd } from '../core/source/packed-records.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { EventStaging, StagedEventCounts } from './event-staging.ts';
import type { RecordRun } from './record-run.ts';

/** Rows per DuckDB data chunk (DuckDB's vector size). */
const CHUNK_ROWS = 2048;
/** Records staged between two turns of the event loop (at most ten milliseconds or so of work). */
const RECORDS_PER_TURN = 4 * CHUNK_ROWS;
/** Records per piece of text (see RawStaging). */
const PIECE_RECORDS = 64;

/**
 * Copies the records EventStaging does not read into DuckDB for the SQL decoder: value bytes as
 * text (checked UTF-8, never a JavaScript string; NULL when null or not UTF-8), `_row` the
 * record's index in the micro-batch, offsets and Kafka timestamps (ms) as DOUBLE (exact below 2^53).
 *
 * An all-ASCII run goes in as pieces of PIECE_RECORDS values as they lie in the packed bytes, one
 * call per piece, and each record says where its value is (`_piece`, `_start`, `_length`): for
 * ASCII a character position is a byte position, so DuckDB's `substr` cuts it out. Other runs
 * stage each value in `raw` (`_piece` -1). `load` runs on a connection of its own.
 */
export class RawStaging {
  private readonly chunk = DuckDBDataChunk.create([INTEGER, INTEGER, DOUBLE, DOUBLE, INTEGER, INTEGER, INTEGER, VARCHAR]);
  private readonly pieceChunk = DuckDBDataChunk.create([INTEGER, VARCHAR]);
  private readonly writer = new ColumnChunkWriter();
  /** The record chunk's columns, in table order, filled row by row before a chunk is handed over. */
  private readonly rows = new Int32Array(CHUNK_ROWS);
  private readonly partitions = new Int32Array(CHUNK_ROWS);
  private readonly offsets = new Float64Array(CHUNK_ROWS);
  private readonly kafkaTsMs = new Float64Array(CHUNK_ROWS);
  private readonly pieces = new Int32Array(CHUNK_ROWS);
  private readonly starts = new Int32Array(CHUNK_ROWS);
  private readonly lengths = new Int32Array(CHUNK_ROWS);
  private readonly raws: (Uint8Array | null)[] = new Array(CHUNK_ROWS).fill(null);
  /** The piece chunk's columns. */
  private readonly pieceIds = new Int32Array(CHUNK_ROWS);
  private readonly pieceTexts: (Uint8Array | null)[] = new Array(CHUNK_ROWS).fill(null);
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
    return `(SELECT r._row, r._partition, r._offset::BIGINT AS _offset, make_timestamp(r._kafka_ts::BIGINT * 1000) AS _kafka_ts,
        CASE WHEN r._piece < 0 THEN r.raw WHEN r._length >= 0 THEN substr(p.text, r._start, r._length) END AS raw
      FROM ${this.qualified} r LEFT JOIN ${this.qualifiedPieces} p ON p._piece = r._piece)`;
  }

  /**
   * Empties the tables, by creating them anew: DuckDB keeps the memory of deleted rows until a
   * checkpoint, which in-memory databases never get.
   */
  resetSql(): string {
    return [
      `CREATE OR REPLACE TABLE ${this.qualified} (_row INTEGER, _partition INTEGER, _offset DOUBLE, _kafka_ts DOUBLE, _piece INTEGER, _start INTEGER, _length INTEGER, raw VARCHAR)`,
      `CREATE OR REPLACE TABLE ${this.qualifiedPieces} (_piece INTEGER, text VARCHAR)`,
    ].join(';\n');
  }

  /** The caller ran `resetSql` (and it succeeded): the next load can skip that round trip. */
  emptied(): void {
    this.empty = true;
  }

  /**
   * Replaces the staged records with those of `runs` (committed when it resolves); `_row` counts
   * across runs. With `events`, a record that it reads (see EventStaging) goes there instead,
   * already decoded. Returns how many records were staged here, raw, and what `events` took.
   */
  async load(runs: readonly RecordRun[], events?: EventStaging): Promise<{ raw: number; events: StagedEventCounts | undefined }> {
    // Unless known to be empty, anew: a load or decode that failed half-way leaves rows behind.
    if (!this.empty) await this.connection.run(this.resetSql());
    this.empty = false;
    await events?.begin();
    const appender = await this.connection.createAppender(this.table, 'main', this.catalog);
    const pieceAppender = await this.connection.createAppender(`${this.table}_pieces`, 'main', this.catalog);
    let staged = 0;
    let eventCounts: StagedEventCounts | undefined;
    try {
      let at = 0;
      let row = 0;
      /** Pieces so far, and those of them not handed to the appender yet. */
      let piece = 0;
      let pendingPieces = 0;
      for (const run of runs) {
        const { packed, partition } = run;
        const runBytes = run.to > run.from ? packed.bytes.subarray(valueEnd(packed, run.from - 1), valueEnd(packed, run.to - 1)) : undefined;
        const ascii = runBytes !== undefined && isAscii(runBytes);
        // A record the reader takes begins with `{` and ends with `}`: within UTF-8 text, so is UTF-8 itself.
        const readable = events !== undefined && runBytes !== undefined && (ascii || isUtf8(runBytes));
        /** The run's window of PIECE_RECORDS records that the latest piece holds. */
        let pieceWindow = -1;
        let pieceStart = 0;
        for (let i = run.from; i < run.to; i++, row++) {
          // Staging runs beside the writer's commit and the Kafka fetches, which wait for this thread.
          if (row % RECORDS_PER_TURN === RECORDS_PER_TURN - 1) await yieldToEventLoop();
          const start = valueEnd(packed, i - 1);
          const isNull = packed.ends[i]! < 0;
          if (readable && !isNull && events.add(packed.bytes, start, valueEnd(packed, i), row, partition, packed.offsets[i]!, packed.timestampsMs[i]!)) continue;
          if (at === CHUNK_ROWS) {
            this.appendChunk(appender, at);
            at = 0;
          }
          this.rows[at] = row;
          this.partitions[at] = partition;
          this.offsets[at] = packed.offsets[i]!;
          this.kafkaTsMs[at] = Math.trunc(packed.timestampsMs[i]!);
          if (ascii) {
            // The records of one window of the run share a piece, made when the first of them is staged here.
            const window = Math.floor((i - run.from) / PIECE_RECORDS);
            if (window !== pieceWindow) {
              pieceWindow = window;
              const first = run.from + window * PIECE_RECORDS;
              const last = Math.min(run.to, first + PIECE_RECORDS) - 1;
              pieceStart = valueEnd(packed, first - 1);
              if (pendingPieces === CHUNK_ROWS) {
                this.appendPieceChunk(pieceAppender, pendingPieces);
                pendingPieces = 0;
              }
              this.pieceIds[pendingPieces] = piece++;
              this.pieceTexts[pendingPieces++] = packed.bytes.subarray(pieceStart, valueEnd(packed, last));
            }
            this.pieces[at] = piece - 1;
            this.starts[at] = start - pieceStart + 1;
            this.lengths[at] = isNull ? -1 : valueEnd(packed, i) - start;
            this.raws[at] = null;
          } else {
            const value = isNull ? undefined : packed.bytes.subarray(start, valueEnd(packed, i));
            this.pieces[at] = -1;
            this.raws[at] = value !== undefined && isUtf8(value) ? value : null;
          }
          at++;
          staged++;
        }
      }
      if (at > 0) this.appendChunk(appender, at);
      if (pendingPieces > 0) this.appendPieceChunk(pieceAppender, pendingPieces);
      eventCounts = events?.finish();
    } catch (error) {
      appender.clear();
      pieceAppender.clear();
      events?.abort();
      throw error;
    } finally {
      pieceAppender.closeSync();
      appender.closeSync();
    }
    if (staged === 0) this.empty = true;
    return { raw: staged, events: eventCounts };
  }

  /** Hands the first `rows` staged records to the appender. */
  private appendChunk(appender: DuckDBAppender, rows: number): void {
    const { chunk, writer } = this;
    chunk.reset();
    chunk.rowCount = rows;
    writer.write(chunk, 0, 'INTEGER', this.rows, 0, rows);
    writer.write(chunk, 1, 'INTEGER', this.partitions, 0, rows);
    writer.write(chunk, 2, 'DOUBLE', this.offsets, 0, rows);
    writer.write(chunk, 3, 'DOUBLE', this.kafkaTsMs, 0, rows);
    writer.write(chunk, 4, 'INTEGER', this.pieces, 0, rows);
    writer.write(chunk, 5, 'INTEGER', this.starts, 0, rows);
    writer.write(chunk, 6, 'INTEGER', this.lengths, 0, rows);
    writer.writeUtf8(chunk, 7, this.raws, 0, rows);
    appender.appendDataChunk(chunk);
  }

  /** Hands the first `rows` pieces to the appender. */
  private appendPieceChunk(appender: DuckDBAppender, rows: number): void {
    const { pieceChunk, writer } = this;
    pieceChunk.reset();
    pieceChunk.rowCount = rows;
    writer.write(pieceChunk, 0, 'INTEGER', this.pieceIds, 0, rows);
    writer.writeUtf8(pieceChunk, 1, this.pieceTexts, 0, rows);
    appender.appendDataChunk(pieceChunk);
  }
}
