import type { DuckDBConnection } from '@duckdb/node-api';
import { inTransaction } from '../core/duckdb/in-transaction.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';
import { masterSegmentColumns } from '../core/storage/segment-columns.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { keepRowsSql } from '../core/duckdb/table-rewrite.ts';
import { aboveCutsRelationSql } from './above-cuts-sql.ts';
import { TailFrontier, type TailSplits } from './tail-frontier.ts';

/**
 * The accepted events the speed layer committed that the archive may not hold yet, with the
 * master dataset's columns: the serving layer's `events` reads it above each partition's split
 * (MasterDatasetViews). Disposable like realtime state: a restart replays it from the cuts.
 */
export const EVENTS_TAIL_TABLE = 'realtime_events_tail';

/** Where the serving layer's `events` reads the tail from, per partition (MasterDatasetViews writes it). */
export const EVENTS_TAIL_SPLITS_TABLE = 'realtime_events_tail_splits';

/** What the serving layer's `events` view needs of the tail. */
export interface EventsTailSource {
  readonly table: string;
  readonly splitsTable: string;
  /** Per partition, where `events` may split for an archive ending at `archiveEnd[p]` (see TailFrontier). */
  splitsFor(archiveEndExclusive: ReadonlyMap<number, number>, cutsExclusive: (partition: number) => number, fileEnds?: (partition: number) => readonly number[]): TailSplits;
  /** `events` now splits at `applied.splits` (its view committed). */
  splitApplied(applied: TailSplits): void;
  /** Whether `events` lacks accepted events the views hold (the tail hit speed.maxEventsTail). */
  lagging(): boolean;
}

/** The tail's figures, for status and metrics. */
export interface EventsTailStatus {
  readonly table: string;
  readonly tailRows: number;
  readonly maxRows: number;
  /** Archived events the tail keeps besides, the newest (speed.recentEvents). */
  readonly maxRecentRows: number;
  readonly lagging: boolean;
  /** Offsets the views hold and `events` does not, over all partitions (records and rejected ones). */
  readonly lagRecords: number;
}

/**
 * The table behind the tail and its bookkeeping (TailFrontier). Writes run on the speed layer's
 * connection, serialised with its micro-batches: `append` inside a micro-batch's transaction,
 * `prune` in a transaction of its own.
 */
export class EventsTail implements EventsTailSource {
  readonly table = EVENTS_TAIL_TABLE;
  readonly splitsTable = EVENTS_TAIL_SPLITS_TABLE;
  readonly frontier: TailFrontier;
  private rows = 0;
  /** The splits the table was last pruned at. */
  private pruned = new Map<number, number>();

  private constructor(
    private readonly connection: DuckDBConnection,
    private readonly columns: string,
    readonly maxRows: number,
    readonly recentRows: number,
  ) {
    this.frontier = new TailFrontier(maxRows, recentRows);
  }

  /**
   * `maxRows`: accepted events not archived yet the tail may hold (speed.maxEventsTail);
   * `recentRows`: archived ones it keeps besides, the newest (speed.recentEvents).
   */
  static async create(connection: DuckDBConnection, schema: EventSchema, maxRows: number, recentRows = 0): Promise<EventsTail> {
    const columns = masterSegmentColumns(schema);
    const createSql = `CREATE TABLE ${EVENTS_TAIL_TABLE} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type}`).join(', ')})`;
    await connection.run(`DROP TABLE IF EXISTS ${EVENTS_TAIL_TABLE}`);
    await connection.run(createSql);
    return new EventsTail(connection, columns.map((c) => quoteIdent(c.name)).join(', '), maxRows, recentRows);
  }

  get tailRows(): number {
    return this.rows;
  }

  splitsFor(archiveEndExclusive: ReadonlyMap<number, number>, cutsExclusive: (partition: number) => number, fileEnds?: (partition: number) => readonly number[]): TailSplits {
    return this.frontier.splitsFor(archiveEndExclusive, cutsExclusive, fileEnds);
  }

  splitApplied(applied: TailSplits): void {
    this.frontier.splitApplied(applied);
  }

  lagging(): boolean {
    return this.frontier.lagOffsets() > 0;
  }

  status(): EventsTailStatus {
    const lagRecords = this.frontier.lagOffsets();
    return { table: this.table, tailRows: this.rows, maxRows: this.maxRows, maxRecentRows: this.recentRows, lagging: lagRecords > 0, lagRecords };
  }

  /**
   * Appends the events of `admitted` partitions from `events` (a relation with the master
   * columns); in the caller's transaction. One INSERT … SELECT: DuckDB copies the columns.
   */
  async append(events: string, admitted: ReadonlySet<number>, allPartitions: boolean): Promise<void> {
    if (admitted.size === 0) return;
    const where = allPartitions ? '' : ` WHERE _partition IN (${[...admitted].join(', ')})`;
    const result = await this.connection.run(`INSERT INTO ${this.table} SELECT ${this.columns} FROM ${events}${where}`);
    this.rows += result.rowsChanged;
  }

  /**
   * The rows of `events` (the serving layer's relation: the archive below each partition's split,
   * this table from it on) at or above `fromExclusive`, as a relation that reads this table alone
   * for each partition where that bound is at or above the split: there `events` is exactly this
   * table's rows, without the archive's files to open (~80 ms for any query on `events` over a
   * history of 40 segments, even one that reads none of them). The splits are read on
   * `connection` from the table written with each `events` view, in the snapshot the relation is
   * then read in (the caller's transaction); without that table, `events` as it is. `events`
   * may also be this table itself.
   */
  async aboveCuts(connection: DuckDBConnection, events: string, fromExclusive: ReadonlyMap<number, number>): Promise<string> {
    if (events === this.table) return aboveCutsRelationSql(this.table, fromExclusive);
    const inEvents = (from: ReadonlyMap<number, number>) => aboveCutsRelationSql(events, from);
    const known = await connection.runAndReadAll(`SELECT count(*) FROM duckdb_tables() WHERE table_name = '${this.splitsTable}'`);
    if (Number(known.getRows()[0]![0]) === 0) return inEvents(fromExclusive);
    const reader = await connection.runAndReadAll(`SELECT _partition, split FROM ${this.splitsTable}`);
    const archiveRead = reader
      .getRows()
      .filter(([partition, split]) => Number(split) > (fromExclusive.get(Number(partition)) ?? 0))
      .map(([partition]) => Number(partition));
    const inTail = aboveCutsRelationSql(this.table, fromExclusive);
    if (archiveRead.length === 0) return inTail;
    return `(SELECT * FROM ${inTail} WHERE _partition NOT IN (${archiveRead.join(', ')}) UNION ALL BY NAME SELECT * FROM ${inEvents(fromExclusive)} WHERE _partition IN (${archiveRead.join(', ')}))`;
  }

  /** Whether rows below the applied splits may be dropped (they are read by no `events` any more). */
  pruneDue(): boolean {
    for (const [partition, split] of this.frontier.splits()) if (split > (this.pruned.get(partition) ?? 0)) return true;
    return false;
  }

  /**
   * Drops the rows below the applied splits by building the table anew from the rows kept
   * (keepRowsSql: one copy, which matters with the newest archived events kept, up to a million
   * rows, while the micro-batches wait), in a transaction of its own. A query that started before
   * still reads its own snapshot.
   */
  async prune(): Promise<void> {
    const splits = this.frontier.splits();
    const cases = [...splits].filter(([, split]) => split > 0).map(([p, split]) => `WHEN ${p} THEN ${split}`);
    try {
      if (cases.length > 0) {
        const sql = keepRowsSql(this.table, `_offset >= CASE _partition ${cases.join(' ')} ELSE 0 END`);
        await inTransaction(this.connection, () => this.connection.run(sql));
      }
      this.pruned = splits;
    } finally {
      await this.recount();
    }
  }

  /** Re-reads the row count (after a rewrite or a rollback). */
  async recount(): Promise<void> {
    const reader = await this.connection.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${this.table}`);
    this.rows = reader.getRows()[0]![0] as number;
  }
}
