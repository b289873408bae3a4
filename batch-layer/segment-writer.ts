import { DuckDBDataChunk, type DuckDBAppender, type DuckDBConnection, type DuckDBInstance } from '@duckdb/node-api';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FieldType } from '../core/config/config-schema.ts';
import { ColumnChunkWriter, type ChunkColumnType } from '../core/duckdb/column-chunk-writer.ts';
import { DUCKDB_TYPES } from '../core/duckdb/column-types.ts';
import type { FieldValue, RejectReason } from '../core/events/decode-event.ts';
import { fsyncPath, publishFile, tempPathFor, writeFileDurably } from '../core/storage/durable-files.ts';
import { REJECTED_COLUMNS } from '../core/storage/segment-columns.ts';
import { SEGMENT_PARQUET_OPTIONS } from '../core/storage/segment-parquet.ts';
import { gapFileName } from '../core/storage/segment-chain.ts';
import { StorageLayout, type SegmentName } from '../core/storage/storage-layout.ts';
import { LambdaError } from '../core/errors/index.ts';
import { quoteIdent, quoteLiteral } from '../core/sql/identifiers.ts';
import type { EventSchema } from '../core/views/view-definition.ts';

/** Decoded records of one partition, column by column, ready for the master dataset. */
export interface AcceptedColumns {
  count: number;
  readonly offsets: number[];
  readonly kafkaTimestampsMs: number[];
  /** One array per schema field, in schema order, values as `createEventDecoder` returns them. */
  readonly columns: FieldValue[][];
}

export interface RejectedRecord {
  readonly offset: number;
  readonly kafkaTimestampMs: number;
  readonly raw: Buffer | null;
  readonly reason: RejectReason;
  readonly message: string;
}

/** The records of offsets [firstOffset, endOffsetExclusive) of one partition. */
export interface SegmentContent {
  readonly partition: number;
  readonly firstOffset: number;
  readonly endOffsetExclusive: number;
  readonly accepted: AcceptedColumns;
  readonly rejected: readonly RejectedRecord[];
}

/**
 * How each field type is staged. Timestamps (and offsets) go in as DOUBLE epoch milliseconds and
 * DATEs as text, converted by SQL on the way to Parquet: JS numbers go into a chunk by one
 * typed-array copy per column, where int64 microseconds would take a bigint per row, and the
 * conversion in the COPY costs no measurable time.
 */
const STAGING: Readonly<Record<FieldType, { type: ChunkColumnType; select: (column: string) => string }>> = {
  VARCHAR: { type: 'VARCHAR', select: (c) => c },
  BOOLEAN: { type: 'BOOLEAN', select: (c) => c },
  INTEGER: { type: 'INTEGER', select: (c) => c },
  BIGINT: { type: 'BIGINT', select: (c) => c },
  DOUBLE: { type: 'DOUBLE', select: (c) => c },
  TIMESTAMP: { type: 'DOUBLE', select: (c) => `epoch_ms(${c}::BIGINT)` },
  DATE: { type: 'VARCHAR', select: (c) => `${c}::DATE` },
};

const MASTER_STAGE = '__lambda_segment_stage';
/** A private in-memory database for staged segments, shared by the connections of the instance. */
const STAGED_DB = '__lambda_staged_segments';
let nextStagedTable = 0;
const REJECTED_STAGE = '__lambda_rejected_stage';
/**
 * An appender commits what it holds on its own once it holds this many rows (DuckDB's
 * BaseAppender::DEFAULT_FLUSH_COUNT, STANDARD_VECTOR_SIZE * 100); below it, what one appender
 * took is committed by its single flush, or not at all when cleared.
 */
const APPENDER_FLUSH_ROWS = 204_800;

/**
 * Writes master-dataset segments, their rejected records and retention-gap markers, each as one
 * durable file (temp name, fsync, rename, fsync dir). Writes run on a small pool of DuckDB
 * connections, so segments of different partitions are written concurrently; the caller keeps
 * the writes of one partition in order. A segment's rejected records are written before the
 * segment: the segment's rename is the commit point, so a crash in between leaves only an orphan
 * rejected file, which readers ignore (see segment-chain.ts).
 */
/**
 * Checked right before a file of the partition is published (renamed into place): rejects when
 * this node may no longer write the partition (it lost its ZooKeeper lock), and then nothing is
 * published. Cluster archivers pass PartitionOwnership.assertOwned.
 */
export type SegmentFence = (partition: number) => Promise<void>;

export class SegmentWriter {
  private readonly idle: DuckDBConnection[];
  private readonly waiting: { readonly resolve: (connection: DuckDBConnection) => void; readonly reject: (error: Error) => void }[] = [];
  private readonly knownDirs = new Set<string>();
  /** Shared by the pool's connections: a chunk is filled with no await in between. */
  private readonly chunkWriter = new ColumnChunkWriter();
  private readonly stageTypes: readonly ChunkColumnType[];
  private closed = false;
  private released = false;

  private constructor(
    private readonly connections: readonly DuckDBConnection[],
    private readonly layout: StorageLayout,
    readonly topic: string,
    private readonly schema: EventSchema,
    private readonly fence: SegmentFence | undefined,
  ) {
    this.idle = [...connections];
    this.stageTypes = ['INTEGER', 'DOUBLE', 'DOUBLE', ...schema.fields.map((f) => STAGING[f.type].type)];
  }

  static async create(options: {
    duckdb: DuckDBInstance;
    layout: StorageLayout;
    topic: string;
    schema: EventSchema;
    /** Segments written at the same time (default 2). */
    concurrency?: number;
    fence?: SegmentFence;
  }): Promise<SegmentWriter> {
    const fields = options.schema.fields.map((f) => `${quoteIdent(f.name)} ${STAGING[f.type].type}`);
    const connections: DuckDBConnection[] = [];
    for (let i = 0; i < (options.concurrency ?? 2); i++) {
      const connection = await options.duckdb.connect();
      await connection.run(`CREATE OR REPLACE TEMP TABLE ${MASTER_STAGE} (_partition INTEGER, _offset DOUBLE, _kafka_ts DOUBLE, ${fields.join(', ')})`);
      await connection.run(
        `CREATE OR REPLACE TEMP TABLE ${REJECTED_STAGE} (_topic VARCHAR, _partition INTEGER, _offset DOUBLE, _kafka_ts DOUBLE, reason VARCHAR, message VARCHAR, raw VARCHAR)`,
      );
      connections.push(connection);
    }
    await connections[0]!.run(`ATTACH IF NOT EXISTS ':memory:' AS ${STAGED_DB}`);
    return new SegmentWriter(connections, options.layout, options.topic, options.schema, options.fence);
  }

  /** Runs `task` on a connection of the pool, waiting for one to be free. */
  async withConnection<T>(task: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.closed) throw new LambdaError('the segment writer is closed', { context: { topic: this.topic } });
    const connection = this.idle.pop() ?? (await new Promise<DuckDBConnection>((resolve, reject) => this.waiting.push({ resolve, reject })));
    try {
      return await task(connection);
    } finally {
      const next = this.waiting.shift();
      if (next) next.resolve(connection);
      else this.idle.push(connection);
    }
  }

  /**
   * Writes the segment (and its rejected records, if any); returns the segment's path. With
   * `staged`, the segment's accepted records are those appended to that table (appendStaged),
   * exactly `staged.rows` of them, and `content.accepted` must be empty.
   */
  write(content: SegmentContent, staged?: { readonly table: string; readonly rows: number }): Promise<string> {
    if (staged && content.accepted.count > 0) throw new LambdaError('a staged segment is written from its table alone', { context: { partition: content.partition } });
    return this.withConnection(async (connection) => {
      const name: SegmentName = { topic: this.topic, partition: content.partition, firstOffset: content.firstOffset, endOffsetExclusive: content.endOffsetExclusive };
      const fileName = StorageLayout.segmentFileName(name);
      if (staged) {
        // A stage that failed for good (its partition released) must not pass for a whole segment.
        const rows = Number((await connection.runAndReadAll(`SELECT count(*) FROM ${stagedRelation(staged.table)}`)).getRows()[0]![0]);
        if (rows !== staged.rows) throw new LambdaError(`staged segment holds ${rows} records, expected ${staged.rows}`, { context: { partition: content.partition } });
      }
      if (content.rejected.length > 0) {
        const rejectedPath = join(this.layout.rejectedPartitionDir(this.topic, content.partition), fileName);
        await this.stageRejected(connection, content);
        await this.copyDurably(connection, this.rejectedSelect(), rejectedPath, content.partition);
      }
      const path = join(this.layout.masterPartitionDir(this.topic, content.partition), fileName);
      if (!staged) await this.stageAccepted(connection, content);
      // A staged table holds its rows in offset order (appended in order; DuckDB keeps insertion order).
      await this.copyDurably(connection, staged ? this.masterSelect(stagedRelation(staged.table)) : `${this.masterSelect(MASTER_STAGE)} ORDER BY _offset`, path, content.partition);
      return path;
    });
  }

  /** A table name for appendStaged, unique in the DuckDB instance (in its database of staged segments). */
  newStagedTable(): string {
    return `segment_${process.pid}_${nextStagedTable++}`;
  }

  /**
   * Appends accepted records of a segment to its own table ahead of the write, so that writing
   * it is little more than the COPY. All or nothing: a failed append adds no row.
   */
  appendStaged(table: string, partition: number, accepted: AcceptedColumns): Promise<void> {
    return this.withConnection(async (connection) => {
      await connection.run(`CREATE TABLE IF NOT EXISTS ${stagedRelation(table)} AS FROM ${MASTER_STAGE} LIMIT 0`);
      if (accepted.count > APPENDER_FLUSH_ROWS) {
        // Too many rows for one appender flush: through the stage, in one INSERT.
        await this.stageAccepted(connection, { partition, accepted });
        await connection.run(`INSERT INTO ${stagedRelation(table)} FROM ${MASTER_STAGE}`);
        return;
      }
      const appender = await connection.createAppender(table, 'main', STAGED_DB);
      try {
        this.appendChunks(appender, partition, accepted);
        appender.flushSync();
      } catch (error) {
        appender.clear();
        throw error;
      } finally {
        appender.closeSync();
      }
    });
  }

  async dropStaged(table: string): Promise<void> {
    await this.withConnection((connection) => connection.run(`DROP TABLE IF EXISTS ${stagedRelation(table)}`));
  }

  /** Records that offsets [firstOffset, endOffsetExclusive) are gone from the source (retention). */
  async writeGap(gap: { partition: number; firstOffset: number; endOffsetExclusive: number; detectedAt: Date }): Promise<string> {
    const dir = this.layout.masterPartitionDir(this.topic, gap.partition);
    await this.ensureDir(dir);
    const path = join(dir, gapFileName({ topic: this.topic, ...gap }));
    const body = { topic: this.topic, partition: gap.partition, fromOffset: gap.firstOffset, toOffsetExclusive: gap.endOffsetExclusive, detectedAt: gap.detectedAt.toISOString() };
    await this.fence?.(gap.partition);
    await writeFileDurably(path, `${JSON.stringify(body)}\n`);
    return path;
  }

  /** Refuses new writes, waits for those in progress, then releases the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.idle.length < this.connections.length) await new Promise((resolve) => setTimeout(resolve, 10));
    this.releaseConnections();
  }

  /**
   * Stops now: refuses new writes, fails those waiting for a connection, interrupts the
   * statements running until none is left (a task interrupted mid-way may start its next
   * statement, which is interrupted in turn), then releases the connections. For a forced exit:
   * a worker thread torn down while one of its DuckDB statements is in flight aborts the whole
   * process (the statement's completion calls into a JavaScript engine that is gone).
   */
  async halt(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.reject(new LambdaError('the segment writer was halted', { context: { topic: this.topic } }));
    while (this.idle.length < this.connections.length) {
      for (const connection of this.connections) if (!this.idle.includes(connection)) connection.interrupt();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.releaseConnections();
  }

  private releaseConnections(): void {
    if (this.released) return;
    this.released = true;
    for (const connection of this.connections) connection.closeSync();
  }

  /**
   * Runs `COPY (<select>) TO <temp>` and publishes the temp file at `finalPath`, a file of
   * `partition`'s, once the fence lets this node write that partition.
   */
  async copyDurably(connection: DuckDBConnection, select: string, finalPath: string, partition: number): Promise<void> {
    await this.ensureDir(dirname(finalPath));
    const temp = tempPathFor(finalPath);
    try {
      await connection.run(`COPY (${select}) TO ${quoteLiteral(temp)} (${SEGMENT_PARQUET_OPTIONS})`);
      await this.fence?.(partition);
      await publishFile(temp, finalPath);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  private masterSelect(table: string): string {
    const fields = this.schema.fields.map((f) => `${STAGING[f.type].select(quoteIdent(f.name))} AS ${quoteIdent(f.name)}`);
    return `SELECT _partition, _offset::BIGINT AS _offset, epoch_ms(_kafka_ts::BIGINT) AS _kafka_ts, ${fields.join(', ')} FROM ${table}`;
  }

  private rejectedSelect(): string {
    const names = REJECTED_COLUMNS.map((c) => c.name);
    return `SELECT ${names
      .map((n) => (n === '_offset' ? '_offset::BIGINT AS _offset' : n === '_kafka_ts' ? 'epoch_ms(_kafka_ts::BIGINT) AS _kafka_ts' : n))
      .join(', ')} FROM ${REJECTED_STAGE} ORDER BY _offset`;
  }

  private async stageAccepted(connection: DuckDBConnection, content: Pick<SegmentContent, 'partition' | 'accepted'>): Promise<void> {
    await connection.run(`DELETE FROM ${MASTER_STAGE}`);
    const appender = await connection.createAppender(MASTER_STAGE, 'main', 'temp');
    try {
      this.appendChunks(appender, content.partition, content.accepted);
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  /** Appends the records a chunk at a time, each column with a few native calls (ColumnChunkWriter). */
  private appendChunks(appender: DuckDBAppender, partition: number, accepted: AcceptedColumns): void {
    const { chunkWriter, stageTypes } = this;
    const duckdbTypes = stageTypes.map((t) => DUCKDB_TYPES[t]);
    const partitions = new Array<number>(Math.min(accepted.count, chunkWriter.maxRows)).fill(partition);
    for (let from = 0; from < accepted.count; from += chunkWriter.maxRows) {
      const to = Math.min(accepted.count, from + chunkWriter.maxRows);
      const chunk = DuckDBDataChunk.create(duckdbTypes, to - from);
      chunkWriter.write(chunk, 0, 'INTEGER', partitions, 0, to - from);
      chunkWriter.write(chunk, 1, 'DOUBLE', accepted.offsets, from, to);
      chunkWriter.write(chunk, 2, 'DOUBLE', accepted.kafkaTimestampsMs, from, to);
      accepted.columns.forEach((column, i) => chunkWriter.write(chunk, i + 3, stageTypes[i + 3]!, column, from, to));
      appender.appendDataChunk(chunk);
    }
  }

  private async stageRejected(connection: DuckDBConnection, content: SegmentContent): Promise<void> {
    await connection.run(`DELETE FROM ${REJECTED_STAGE}`);
    const appender = await connection.createAppender(REJECTED_STAGE, 'main', 'temp');
    try {
      for (const record of content.rejected) {
        appender.appendVarchar(this.topic);
        appender.appendInteger(content.partition);
        appender.appendDouble(record.offset);
        appender.appendDouble(record.kafkaTimestampMs);
        appender.appendVarchar(record.reason);
        appender.appendVarchar(record.message);
        if (record.raw === null) appender.appendNull();
        else appender.appendVarchar(record.raw.toString('utf8'));
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  /** Creates the directory once and fsyncs its parent so the new entry survives a crash. */
  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    const created = await mkdir(dir, { recursive: true });
    if (created !== undefined) {
      const newDirs: string[] = [];
      for (let d = dir; d !== created && d !== dirname(d); d = dirname(d)) newDirs.push(d);
      newDirs.push(created);
      for (const d of newDirs) await fsyncPath(dirname(d));
    }
    this.knownDirs.add(dir);
  }
}

/** A table of appendStaged, qualified with the database of staged segments. */
function stagedRelation(table: string): string {
  return `${STAGED_DB}.main.${table}`;
}
