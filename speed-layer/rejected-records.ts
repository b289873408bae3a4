import { DuckDBTimestampValue, type DuckDBConnection } from '@duckdb/node-api';
import { REJECT_REASONS, type RejectReason } from '../core/events/decode-event.ts';
import type { RejectedRecord } from './micro-batch-decoder.ts';
import { quoteLiteral } from '../core/sql/identifiers.ts';
import { keepRowsSql, rewriteTableSql } from '../core/duckdb/table-rewrite.ts';

/**
 * The queryable table of records the speed layer rejected, newest `maxKept` only. Like the
 * realtime state it covers offsets at or above the current batch cuts (the batch layer keeps the
 * ones below), and it is rebuilt by the replay after a restart.
 */
export const REJECTED_REALTIME_TABLE = 'rejected_realtime';

/**
 * The records above the cuts that `REJECTED_REALTIME_TABLE` no longer holds (beyond `maxKept`),
 * counted per offset block and reason. Invariant, at every commit: its counts plus the table's
 * rows are every record the speed layer rejected at or above the cuts, each once; blocks are
 * what a cut drops, so the counts stay exact across handoffs.
 */
export const REJECTED_NOT_KEPT_TABLE = 'rejected_realtime_not_kept';

const CREATE_NOT_KEPT_TABLE = `CREATE TABLE IF NOT EXISTS ${REJECTED_NOT_KEPT_TABLE} (_partition INTEGER, block_start BIGINT, reason VARCHAR, n BIGINT)`;
/** Rows of the not-kept counts past which they are summed up again (one row per block and reason). */
const NOT_KEPT_ROWS_BEFORE_SUMMING = 1_000;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${REJECTED_REALTIME_TABLE} (
  seq BIGINT, topic VARCHAR, _partition INTEGER, _offset BIGINT, _kafka_ts TIMESTAMP,
  raw VARCHAR, raw_bytes INTEGER, reason VARCHAR, message VARCHAR)`;

export interface RejectedRecordsOptions {
  readonly topic: string;
  /** Rows kept; the oldest go first. 0 keeps none (the counts still count). */
  readonly maxKept: number;
  /** The speed layer's offset block size: cuts fall on its multiples. */
  readonly blockSize: number;
  /** Longer values are cut to this many bytes in `raw`; `raw_bytes` keeps the full length. */
  readonly maxRawBytes?: number;
}

export class RejectedRecords {
  private nextSeq = 0;
  private rows = 0;
  private deletedSinceRewrite = 0;
  private notKeptRows = 0;
  private readonly counts = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]));

  private constructor(
    private readonly connection: DuckDBConnection,
    private readonly options: Required<RejectedRecordsOptions>,
  ) {}

  static async create(connection: DuckDBConnection, options: RejectedRecordsOptions): Promise<RejectedRecords> {
    await connection.run(`DROP TABLE IF EXISTS ${REJECTED_REALTIME_TABLE}`);
    await connection.run(`DROP TABLE IF EXISTS ${REJECTED_NOT_KEPT_TABLE}`);
    await connection.run(CREATE_TABLE);
    await connection.run(CREATE_NOT_KEPT_TABLE);
    return new RejectedRecords(connection, { maxRawBytes: 8_192, ...options });
  }

  /** Rejected records counted per reason since the process started. */
  countsByReason(): ReadonlyMap<RejectReason, number> {
    return this.counts;
  }

  /** Counts records whose micro-batch committed (a retried micro-batch counts once). */
  countCommitted(rejected: readonly RejectedRecord[]): void {
    for (const r of rejected) this.counts.set(r.reason, (this.counts.get(r.reason) ?? 0) + 1);
  }

  /**
   * Stores `rejected` and forgets the oldest beyond the bound, counting what it forgets in
   * `REJECTED_NOT_KEPT_TABLE`; runs in the caller's transaction.
   */
  async add(rejected: readonly RejectedRecord[]): Promise<void> {
    const kept = this.options.maxKept === 0 ? [] : rejected.slice(-this.options.maxKept);
    await this.countNotKept(rejected.slice(0, rejected.length - kept.length));
    if (kept.length > 0) await this.append(kept);
    if (this.rows > this.options.maxKept) await this.forgetOldest();
    if (this.notKeptRows > NOT_KEPT_ROWS_BEFORE_SUMMING) await this.sumNotKept('true');
  }

  private async append(kept: readonly RejectedRecord[]): Promise<void> {
    const appender = await this.connection.createAppender(REJECTED_REALTIME_TABLE);
    try {
      for (const { record, reason, message } of kept) {
        appender.appendBigInt(BigInt(this.nextSeq++));
        appender.appendVarchar(this.options.topic);
        appender.appendInteger(record.partition);
        appender.appendBigInt(BigInt(record.offset));
        appender.appendTimestamp(new DuckDBTimestampValue(BigInt(Math.trunc(record.timestampMs)) * 1000n));
        if (record.value === null) appender.appendNull();
        else appender.appendVarchar(record.value.subarray(0, this.options.maxRawBytes).toString('utf8'));
        appender.appendInteger(record.value?.length ?? 0);
        appender.appendVarchar(reason);
        appender.appendVarchar(message);
        appender.endRow();
      }
    } finally {
      appender.closeSync();
    }
    this.rows += kept.length;
  }

  /** Moves the rows beyond the newest `maxKept` into the not-kept counts. */
  private async forgetOldest(): Promise<void> {
    const oldestKept = this.nextSeq - this.options.maxKept;
    const block = `_offset - _offset % ${this.options.blockSize}`;
    const counted = await this.connection.run(
      `INSERT INTO ${REJECTED_NOT_KEPT_TABLE} SELECT _partition, ${block}, reason, count(*) FROM ${REJECTED_REALTIME_TABLE} WHERE seq < ${oldestKept} GROUP BY ALL`,
    );
    this.notKeptRows += counted.rowsChanged;
    // Deleted rows hold their memory until the table is rebuilt: rebuild once they add up to the bound.
    if (this.deletedSinceRewrite + this.rows - this.options.maxKept >= this.options.maxKept) {
      await this.rewrite(`seq >= ${oldestKept}`);
    } else {
      const result = await this.connection.run(`DELETE FROM ${REJECTED_REALTIME_TABLE} WHERE seq < ${oldestKept}`);
      this.rows -= result.rowsChanged;
      this.deletedSinceRewrite += result.rowsChanged;
    }
  }

  /** Re-reads the row counts after a rolled-back transaction. */
  async recount(): Promise<void> {
    const reader = await this.connection.runAndReadAll(
      `SELECT (SELECT count(*) FROM ${REJECTED_REALTIME_TABLE})::DOUBLE, (SELECT count(*) FROM ${REJECTED_NOT_KEPT_TABLE})::DOUBLE`,
    );
    const [rows, notKeptRows] = reader.getRows()[0]! as [number, number];
    this.rows = rows;
    this.notKeptRows = notKeptRows;
  }

  /** Forgets records below the cuts (now kept by the batch layer); in the caller's transaction. */
  async dropBelow(cutsExclusive: ReadonlyMap<number, number>): Promise<void> {
    const cases = [...cutsExclusive].filter(([, cut]) => cut > 0).map(([p, cut]) => `WHEN ${p} THEN ${cut}`);
    if (cases.length === 0) return;
    const cutOf = `CASE _partition ${cases.join(' ')} ELSE 0 END`;
    await this.rewrite(`_offset >= ${cutOf}`);
    // Cuts fall on block boundaries (checkHandoff): a block is wholly below a cut or wholly above.
    await this.sumNotKept(`block_start >= ${cutOf}`);
  }

  /** Counts records left out of the table as they arrive (more in one micro-batch than `maxKept`). */
  private async countNotKept(records: readonly RejectedRecord[]): Promise<void> {
    if (records.length === 0) return;
    const counts = new Map<string, { partition: number; blockStart: number; reason: string; n: number }>();
    for (const { record, reason } of records) {
      const blockStart = record.offset - (record.offset % this.options.blockSize);
      const key = `${record.partition}|${blockStart}|${reason}`;
      const entry = counts.get(key) ?? { partition: record.partition, blockStart, reason, n: 0 };
      entry.n++;
      counts.set(key, entry);
    }
    const values = [...counts.values()].map((c) => `(${c.partition}, ${c.blockStart}, ${quoteLiteral(c.reason)}, ${c.n})`);
    await this.connection.run(`INSERT INTO ${REJECTED_NOT_KEPT_TABLE} VALUES ${values.join(', ')}`);
    this.notKeptRows += values.length;
  }

  /** Keeps the not-kept counts matching `condition`, one row per block and reason; in the caller's transaction. */
  private async sumNotKept(condition: string): Promise<void> {
    const select = `SELECT _partition, block_start, reason, sum(n)::BIGINT AS n FROM ${REJECTED_NOT_KEPT_TABLE} WHERE ${condition} GROUP BY ALL`;
    await this.connection.run(rewriteTableSql(REJECTED_NOT_KEPT_TABLE, CREATE_NOT_KEPT_TABLE, select));
    await this.recount();
  }

  /** Keeps the rows matching `condition` (see `keepRowsSql`); in the caller's transaction. */
  private async rewrite(condition: string): Promise<void> {
    await this.connection.run(keepRowsSql(REJECTED_REALTIME_TABLE, condition));
    this.deletedSinceRewrite = 0;
    await this.recount();
  }
}
