import { DuckDBTimestampValue, type DuckDBConnection } from '@duckdb/node-api';
import { REJECT_REASONS, type RejectReason } from '../core/events/decode-event.ts';
import type { RejectedRecord } from './micro-batch-decoder.ts';
import { rewriteTableSql } from './table-rewrite.ts';

/**
 * The queryable table of records the speed layer rejected, newest `maxKept` only. Like the
 * realtime state it covers offsets at or above the current batch cuts (the batch layer keeps the
 * ones below), and it is rebuilt by the replay after a restart.
 */
export const REJECTED_REALTIME_TABLE = 'rejected_realtime';

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${REJECTED_REALTIME_TABLE} (
  seq BIGINT, topic VARCHAR, _partition INTEGER, _offset BIGINT, _kafka_ts TIMESTAMP,
  raw VARCHAR, raw_bytes INTEGER, reason VARCHAR, message VARCHAR)`;

export interface RejectedRecordsOptions {
  readonly topic: string;
  /** Rows kept; the oldest go first. 0 keeps none (the counts still count). */
  readonly maxKept: number;
  /** Longer values are cut to this many bytes in `raw`; `raw_bytes` keeps the full length. */
  readonly maxRawBytes?: number;
}

export class RejectedRecords {
  private nextSeq = 0;
  private rows = 0;
  private deletedSinceRewrite = 0;
  private readonly counts = new Map<RejectReason, number>(REJECT_REASONS.map((r) => [r, 0]));

  private constructor(
    private readonly connection: DuckDBConnection,
    private readonly options: Required<RejectedRecordsOptions>,
  ) {}

  static async create(connection: DuckDBConnection, options: RejectedRecordsOptions): Promise<RejectedRecords> {
    await connection.run(`DROP TABLE IF EXISTS ${REJECTED_REALTIME_TABLE}`);
    await connection.run(CREATE_TABLE);
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

  /** Stores `rejected` and forgets the oldest beyond the bound; runs in the caller's transaction. */
  async add(rejected: readonly RejectedRecord[]): Promise<void> {
    const kept = this.options.maxKept === 0 ? [] : rejected.slice(-this.options.maxKept);
    if (kept.length === 0) return;
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
    if (this.rows <= this.options.maxKept) return;
    const oldestKept = this.nextSeq - this.options.maxKept;
    // Deleted rows hold their memory until the table is rebuilt: rebuild once they add up to the bound.
    if (this.deletedSinceRewrite + this.rows - this.options.maxKept >= this.options.maxKept) {
      await this.rewrite(`seq >= ${oldestKept}`);
    } else {
      const result = await this.connection.run(`DELETE FROM ${REJECTED_REALTIME_TABLE} WHERE seq < ${oldestKept}`);
      this.rows -= result.rowsChanged;
      this.deletedSinceRewrite += result.rowsChanged;
    }
  }

  /** Re-reads the row count after a rolled-back transaction. */
  async recount(): Promise<void> {
    const reader = await this.connection.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${REJECTED_REALTIME_TABLE}`);
    this.rows = reader.getRows()[0]![0] as number;
  }

  /** Forgets records below the cuts (now kept by the batch layer); in the caller's transaction. */
  async dropBelow(cutsExclusive: ReadonlyMap<number, number>): Promise<void> {
    const cases = [...cutsExclusive].filter(([, cut]) => cut > 0).map(([p, cut]) => `WHEN ${p} THEN ${cut}`);
    if (cases.length > 0) await this.rewrite(`_offset >= CASE _partition ${cases.join(' ')} ELSE 0 END`);
  }

  /** Keeps the rows matching `condition` (see `rewriteTableSql`); in the caller's transaction. */
  private async rewrite(condition: string): Promise<void> {
    await this.connection.run(rewriteTableSql(REJECTED_REALTIME_TABLE, CREATE_TABLE, `SELECT * FROM ${REJECTED_REALTIME_TABLE} WHERE ${condition}`));
    this.deletedSinceRewrite = 0;
    await this.recount();
  }
}
