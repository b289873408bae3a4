import type { DuckDBConnection } from '@duckdb/node-api';
import { cutExclusive, type BatchManifest } from '../../core/batch/batch-manifest.ts';
import { REJECT_REASONS, type RejectReason } from '../../core/events/decode-event.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { emptyRelationSql, masterRelationSql } from '../../core/storage/master-relation-sql.ts';
import { readMasterChains, rejectedFilesOf, type PartitionChain } from '../../core/storage/segment-chain.ts';
import { REJECTED_COLUMNS } from '../../core/storage/segment-columns.ts';
import type { StorageLayout } from '../../core/storage/storage-layout.ts';
import type { EventSchema } from '../../core/views/view-definition.ts';
import { SegmentTimeRanges } from './segment-time-ranges.ts';
import type { EventTimeRange } from '../../core/storage/event-time-groups.ts';

/** Per partition, where `events` splits between archive and tail, and where the archive ends. */
type TailSplits = Omit<MasterViewsRefresh, 'changed'>;

/** The speed layer's tail of `events` (speed-layer/events-tail.ts), as this module needs it. */
export interface EventsTailSplits {
  readonly table: string;
  /**
   * The table of `events`' splits (`_partition`, `split`; a partition not in it splits at 0),
   * written before each new `events` view, so that a reader's snapshot knows where the view it
   * sees reads the tail from (EventsTail.aboveCuts).
   */
  readonly splitsTable: string;
  /** Per partition, where `events` may split between archive and tail, and where the archive ends. */
  splitsFor(archiveEndExclusive: ReadonlyMap<number, number>, cutsExclusive: (partition: number) => number, fileEnds?: (partition: number) => readonly number[]): TailSplits;
  /** `events` splits at `applied.splits` now (its view committed). */
  splitApplied(applied: TailSplits): void;
}

/** The columns of the `rejected` table users query. */
const REJECTED_VIEW_COLUMNS = ['topic', '_partition', '_offset', '_kafka_ts', 'reason', 'message', 'raw'] as const;

export interface MasterDatasetSources {
  readonly layout: StorageLayout;
  readonly topic: string;
  readonly schema: EventSchema;
  /** The speed layer's table of rejected records at or above the cuts, when it runs here. */
  readonly realtimeRejectedTable?: string;
  /**
   * With it, the speed layer's counts (`n` per `reason`) of the records at or above the cuts that
   * `realtimeRejectedTable` does not keep (speed.maxRejectedKept).
   */
  readonly realtimeNotKeptTable?: string;
  /** The speed layer's tail of accepted events not archived yet, when it runs here. */
  readonly eventsTail?: EventsTailSplits;
}

/** What a `refresh` wrote; hand it to `committed` once its transaction committed. */
export interface MasterViewsRefresh {
  readonly changed: boolean;
  /** Per partition, `events` reads the archive below it and the tail at or above it. */
  readonly splits: ReadonlyMap<number, number>;
  /** Per partition, where the archive ends (the tail's rows between the split and this are recent archived ones). */
  readonly archived: ReadonlyMap<number, number>;
}

/** The set of rejected records the `rejected` table stands for, counted. */
export interface RejectedCounts {
  /** Each rejected record once: archived below the batch cuts plus the speed layer's at or above them. */
  readonly total: number;
  readonly byReason: Readonly<Record<RejectReason, number>>;
  /** Of `total`, the records above the cuts the speed layer counts but no longer keeps as rows. */
  readonly notKept: number;
}

/**
 * The `events` and `rejected` tables of the SQL endpoint (DESIGN.md, "Interfaces"):
 *
 *   events    every accepted event the views hold: per partition, the archive (the master
 *             dataset's chain of Parquet files, each (partition, offset) once whatever
 *             overlapping leftovers a crash left) below a split, and the speed layer's tail at
 *             or above it. The split is at most the archive's end, and never past what the
 *             speed layer consumed (EventsTail), so `events` and the views count the same
 *             events; the tail keeps the newest archived events too (speed.recentEvents), and
 *             the split trails the archive's end by those: the files above it are not read.
 *   rejected  archived rejected records below the batch cuts, plus the speed layer's rejected
 *             records at or above them: each bad record once, as the views count records
 *
 * Both are SQL views naming their files one by one, so they are re-created when the files
 * change (`refresh`), and inside the batch swap transaction when the cuts move. The tail drops
 * rows below a split only after the view reading past them committed (`committed`).
 */
export class MasterDatasetViews {
  private lastSql = '';
  /** Each segment's columns (name and Parquet type, in order), read once: segments never change. */
  private readonly columnsByPath = new Map<string, string>();
  private readonly timeRanges: SegmentTimeRanges;

  constructor(private readonly sources: MasterDatasetSources) {
    this.timeRanges = new SegmentTimeRanges(sources.schema.timestampField);
  }

  /** Re-creates the views if their files, the cuts or the splits changed. */
  async refresh(connection: DuckDBConnection, manifest: BatchManifest | undefined): Promise<MasterViewsRefresh> {
    const { sql, splits, archived } = await this.viewsSql(connection, manifest);
    if (sql.join(';') === this.lastSql) return { changed: false, splits, archived };
    for (const statement of sql) await connection.run(statement);
    this.lastSql = sql.join(';');
    return { changed: true, splits, archived };
  }

  /** The views of `refresh` committed: the tail may forget what lies below the splits. */
  committed(refresh: MasterViewsRefresh): void {
    this.sources.eventsTail?.splitApplied(refresh);
  }

  /**
   * Counts the records `rejected` stands for in ONE statement, so in one snapshot with the rows
   * (a batch swap or a micro-batch commits wholly before or after it): `count(*) FROM rejected`
   * plus the speed layer's not-kept counts. Equal to `count(*) FROM rejected` while the speed
   * layer holds at most speed.maxRejectedKept records above the cuts.
   */
  async countRejected(connection: DuckDBConnection): Promise<RejectedCounts> {
    const notKept = this.sources.realtimeNotKeptTable;
    const reader = await connection.runAndReadAll(`SELECT reason, sum(n)::DOUBLE, sum(not_kept)::DOUBLE FROM (
      SELECT reason, count(*) AS n, 0 AS not_kept FROM rejected GROUP BY ALL
      ${notKept ? `UNION ALL SELECT reason, sum(n), sum(n) FROM ${notKept} GROUP BY ALL` : ''}) GROUP BY ALL`);
    const byReason = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
    let total = 0;
    let notKeptTotal = 0;
    for (const [reason, n, notKeptN] of reader.getRows() as [RejectReason, number, number][]) {
      byReason[reason] = n;
      total += n;
      notKeptTotal += notKeptN;
    }
    return { total, byReason, notKept: notKeptTotal };
  }

  private async viewsSql(connection: DuckDBConnection, manifest: BatchManifest | undefined): Promise<{ sql: string[] } & TailSplits> {
    const { layout, topic, schema } = this.sources;
    const chains = await readMasterChains(layout, topic);
    const { sql: events, splits, archived } = await this.eventsSql(connection, chains, manifest);
    // Before the view: splits only grow, so a reader who sees the view's splits (in one
    // transaction, or after both statements) sees them or newer, never older, in the table.
    const splitsTable = this.sources.eventsTail ? [splitsTableSql(this.sources.eventsTail.splitsTable, splits)] : [];

    const parts: string[] = [];
    for (const chain of chains.values()) {
      const files = [...(await rejectedFilesOf(layout, chain)).values()];
      if (files.length === 0) continue;
      const cut = cutExclusive(manifest, chain.partition);
      parts.push(
        `SELECT _topic AS topic, _partition, _offset, _kafka_ts, reason, message, raw FROM read_parquet([${files.map(quoteLiteral).join(', ')}]) WHERE _offset < ${cut}`,
      );
    }
    if (this.sources.realtimeRejectedTable) {
      parts.push(`SELECT ${REJECTED_VIEW_COLUMNS.join(', ')} FROM ${this.sources.realtimeRejectedTable}`);
    }
    const emptyRejected = emptyRelationSql(
      REJECTED_VIEW_COLUMNS.map((name) => ({ name, type: REJECTED_COLUMNS.find((c) => c.name === name || c.name === `_${name}`)!.type })),
    );
    const rejected = parts.length > 0 ? `(${parts.join(' UNION ALL ')})` : emptyRejected;
    return { sql: [...splitsTable, `CREATE OR REPLACE VIEW events AS SELECT * FROM ${events}`, `CREATE OR REPLACE VIEW rejected AS SELECT * FROM ${rejected}`], splits, archived };
  }

  /** Whether the files have the same columns (read once per file, forgotten once it left the chains). */
  private async sameColumns(connection: DuckDBConnection, files: readonly string[]): Promise<boolean> {
    const unknown = files.filter((f) => !this.columnsByPath.has(f));
    if (unknown.length > 0) {
      const reader = await connection.runAndReadAll(
        `SELECT file_name, string_agg(name || ' ' || coalesce(type, '') || ' ' || coalesce(logical_type::VARCHAR, ''), ', ') FROM parquet_schema([${unknown.map(quoteLiteral).join(', ')}]) GROUP BY file_name`,
      );
      for (const [file, columns] of reader.getRows() as [string, string][]) this.columnsByPath.set(file, columns);
    }
    const wanted = new Set(files);
    for (const path of this.columnsByPath.keys()) if (!wanted.has(path)) this.columnsByPath.delete(path);
    return new Set(files.map((f) => this.columnsByPath.get(f))).size <= 1;
  }

  /**
   * Per partition the segments below its split (files reaching past it read up to it) and the
   * tail from it on; without a tail, every archived segment.
   */
  private async eventsSql(
    connection: DuckDBConnection,
    chains: ReadonlyMap<number, PartitionChain>,
    manifest: BatchManifest | undefined,
  ): Promise<{ sql: string } & TailSplits> {
    const { schema, eventsTail } = this.sources;
    const segmentsOf = (chain: PartitionChain) => chain.items.filter((i) => i.kind === 'segment');
    const allFiles = [...chains.values()].flatMap((c) => segmentsOf(c).map((i) => i.path));
    const eventTimeRanges = await this.timeRanges.rangesOf(connection, allFiles);
    if (!eventsTail) {
      return { sql: masterRelationSql(schema, { wholeFiles: allFiles, cutFiles: [], eventTimeRanges }), splits: new Map(), archived: new Map() };
    }
    const archiveEnd = new Map([...chains.values()].map((c) => [c.partition, c.endOffsetExclusive]));
    const { splits, archived } = eventsTail.splitsFor(
      archiveEnd,
      (p) => cutExclusive(manifest, p),
      (p) => {
        const chain = chains.get(p);
        return chain ? segmentsOf(chain).map((i) => i.endOffsetExclusive) : [];
      },
    );
    const wholeFiles: string[] = [];
    const cutFiles: { path: string; partition: number; cutExclusive: number; rangeBelowCut: EventTimeRange | undefined }[] = [];
    for (const chain of chains.values()) {
      const split = splits.get(chain.partition) ?? 0;
      for (const item of segmentsOf(chain)) {
        if (item.endOffsetExclusive <= split) wholeFiles.push(item.path);
        else if (item.firstOffset < split) {
          const rangeBelowCut = await this.timeRanges.rangeBelow(connection, item.path, split);
          cutFiles.push({ path: item.path, partition: chain.partition, cutExclusive: split, rangeBelowCut });
        }
      }
    }
    const sameSchema = await this.sameColumns(connection, allFiles);
    const archivedSql = masterRelationSql(schema, { wholeFiles, cutFiles, sameSchema, eventTimeRanges });
    const cases = [...splits].filter(([, split]) => split > 0).map(([p, split]) => `WHEN ${p} THEN ${split}`);
    const tailFilter = cases.length > 0 ? ` WHERE _offset >= CASE _partition ${cases.join(' ')} ELSE 0 END` : '';
    return { sql: `(SELECT * FROM ${archivedSql} UNION ALL BY NAME SELECT * FROM ${eventsTail.table}${tailFilter})`, splits, archived };
  }
}

/** The statement that makes `table` hold `splits` (partition → split). */
function splitsTableSql(table: string, splits: ReadonlyMap<number, number>): string {
  const rows = [...splits].filter(([, split]) => split > 0).map(([partition, split]) => `(${Number(partition)}, ${Number(split)})`);
  const values = rows.length > 0 ? `SELECT * FROM (VALUES ${rows.join(', ')}) AS t(_partition, split)` : 'SELECT * FROM (VALUES (0, 0)) AS t(_partition, split) WHERE false';
  return `CREATE OR REPLACE TABLE ${table} AS SELECT _partition::INTEGER AS _partition, split::BIGINT AS split FROM (${values})`;
}
