import type { DuckDBConnection } from '@duckdb/node-api';
import { cutExclusive, type BatchManifest } from '../../core/batch/batch-manifest.ts';
import { REJECT_REASONS, type RejectReason } from '../../core/events/decode-event.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { emptyRelationSql, masterRelationSql } from '../../core/storage/master-relation-sql.ts';
import { readMasterChains, rejectedFilesOf } from '../../core/storage/segment-chain.ts';
import { REJECTED_COLUMNS } from '../../core/storage/segment-columns.ts';
import type { StorageLayout } from '../../core/storage/storage-layout.ts';
import type { EventSchema } from '../../core/views/view-definition.ts';

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
 *   events    every archived record, read from the master dataset's chain of Parquet files
 *             (each (partition, offset) once, whatever overlapping leftovers a crash left)
 *   rejected  archived rejected records below the batch cuts, plus the speed layer's rejected
 *             records at or above them: each bad record once, as the views count records
 *
 * Both are SQL views naming their files one by one, so they are re-created when the files
 * change (`refresh`), and inside the batch swap transaction when the cuts move.
 */
export class MasterDatasetViews {
  private lastSql = '';

  constructor(private readonly sources: MasterDatasetSources) {}

  /** Re-creates the views if their files or the cuts changed; returns whether it did. */
  async refresh(connection: DuckDBConnection, manifest: BatchManifest | undefined): Promise<boolean> {
    const sql = await this.viewsSql(manifest);
    if (sql.join(';') === this.lastSql) return false;
    for (const statement of sql) await connection.run(statement);
    this.lastSql = sql.join(';');
    return true;
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

  private async viewsSql(manifest: BatchManifest | undefined): Promise<string[]> {
    const { layout, topic, schema } = this.sources;
    const chains = await readMasterChains(layout, topic);
    const segments = [...chains.values()].flatMap((c) => c.items.filter((i) => i.kind === 'segment').map((i) => i.path));
    const events = masterRelationSql(schema, { wholeFiles: segments, cutFiles: [] });

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
    return [`CREATE OR REPLACE VIEW events AS SELECT * FROM ${events}`, `CREATE OR REPLACE VIEW rejected AS SELECT * FROM ${rejected}`];
  }
}
