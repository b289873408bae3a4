import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import type { CompiledView } from '../../core/views/view-compiler.ts';
import { WINDOW_START } from '../../core/views/view-definition.ts';
import { batchTable, realtimeTable } from '../../core/views/view-tables.ts';
import { timestampSql } from './alert-query.ts';

/**
 * The partial state of a windowed view's recent buckets, kept for alert evaluation so that its
 * cost follows the number of instances, not the number of realtime rows. Realtime state is kept
 * per (key, partition, offset block), which at 20k events/s over 10k keys is close to one row per
 * event: merging five minutes of it per micro-batch is a full scan of millions of rows. This
 * table holds the same state merged to one row per (bucket, key).
 *
 * Exactness: the table is rebuilt from batch ⊎ realtime, then every committed micro-batch's
 * events are folded in with the view's own partial SQL. Both happen on the speed layer's
 * connection, in its serialised commit path (after the micro-batch commits, before the next
 * one), so each event is counted once: a rebuild reads state that includes the micro-batch it
 * runs for, and skips folding that one in. A batch swap moves state from realtime to batch and so
 * changes nothing here; `markStale` forces a rebuild all the same (e.g. after a swap that
 * replaced a view's definition). Buckets older than `retainMs` before the newest are dropped:
 * no window reaches them.
 */
export class AlertWindowCache {
  readonly table: string;
  private stale = true;
  private ready = false;
  private newestBucketMs: number | null = null;
  /** State columns kept NULL (typed): sketches of distinct-count measures no rule uses. */
  private readonly nulledStates: readonly string[];
  private readonly temp: { readonly delta: string; readonly merged: string };

  constructor(
    readonly view: CompiledView,
    private readonly retainMs: number,
    options: { readonly unusedMeasures?: ReadonlySet<string> } = {},
  ) {
    const name = view.definition.name;
    this.table = quoteIdent(`__alert_window__${name}`);
    this.temp = { delta: quoteIdent(`__alert_window_delta__${name}`), merged: quoteIdent(`__alert_window_merged__${name}`) };
    this.nulledStates = view.stateColumns.filter((s) => options.unusedMeasures?.has(s.measure)).map((s) => s.name);
  }

  /** True once built: the evaluator reads the window from here instead of the view's tables. */
  get isReady(): boolean {
    return this.ready;
  }

  /** The next micro-batch rebuilds the table instead of folding its events in. */
  markStale(): void {
    this.stale = true;
  }

  /**
   * Call in the speed layer's serialised commit path, on its connection, for every micro-batch:
   * inside its transaction, after its realtime rows are written (`inTransaction`: best, the cache
   * then moves atomically with realtime state), or right after it committed. `events` is the
   * relation of the micro-batch's decoded events (schema fields, `_partition`, `_offset`),
   * undefined when it had none.
   *
   * The micro-batch's partial state is merged into the rows of the (bucket, key)s it touches, in
   * one transaction, so the table always holds one row per (bucket, key): a reader sees it before
   * or after the micro-batch, and the fold costs what the micro-batch touches, not the table size.
   */
  async afterMicroBatch(connection: DuckDBConnection, events: string | undefined, options: { readonly inTransaction?: boolean } = {}): Promise<void> {
    if (this.stale) {
      await this.rebuild(connection);
      return;
    }
    if (!events) return;
    const { delta, merged } = this.temp;
    const sameKey = [WINDOW_START, ...this.view.definition.dimensions].map((c) => `t.${quoteIdent(c)} IS NOT DISTINCT FROM d.${quoteIdent(c)}`).join(' AND ');
    await connection.run(`CREATE OR REPLACE TEMP TABLE ${delta} AS ${this.horizonFiltered(this.withoutUnused(`(${this.view.partialSql(events)})`))}`);
    await connection.run(
      `CREATE OR REPLACE TEMP TABLE ${merged} AS ${this.view.mergeSql(`(SELECT t.* FROM ${this.table} AS t SEMI JOIN ${delta} AS d ON ${sameKey} UNION ALL BY NAME SELECT * FROM ${delta})`)}`,
    );
    await atomically(connection, options.inTransaction ?? false, async () => {
      await connection.run(`DELETE FROM ${this.table} AS t USING ${delta} AS d WHERE ${sameKey}`);
      await connection.run(`INSERT INTO ${this.table} BY NAME SELECT * FROM ${merged}`);
      const previous = this.newestBucketMs;
      await this.observeNewest(connection, delta);
      if (previous !== null && this.newestBucketMs !== previous) {
        await connection.run(`DELETE FROM ${this.table} WHERE ${quoteIdent(WINDOW_START)} < ${timestampSql(this.newestBucketMs! - this.retainMs)}`);
      }
    });
    // The two temp tables stay until the next micro-batch replaces them: a DROP costs a statement.
  }

  /** `relation` with the unused sketch columns replaced by NULLs of their own type. */
  private withoutUnused(relation: string): string {
    if (this.nulledStates.length === 0) return relation;
    const replaced = this.nulledStates.map((c) => `CASE WHEN false THEN ${quoteIdent(c)} END AS ${quoteIdent(c)}`).join(', ');
    return `(SELECT * REPLACE (${replaced}) FROM ${relation})`;
  }

  /** Rows of `relation` in buckets some window may still reach. */
  private horizonFiltered(relation: string): string {
    if (this.newestBucketMs === null) return `SELECT * FROM ${relation}`;
    return `SELECT * FROM ${relation} WHERE ${quoteIdent(WINDOW_START)} >= ${timestampSql(this.newestBucketMs - this.retainMs)}`;
  }

  private async observeNewest(connection: DuckDBConnection, relation: string): Promise<void> {
    const ws = quoteIdent(WINDOW_START);
    const [[newest]] = (await connection.runAndReadAll(`SELECT epoch_ms(max(${ws})) FROM ${relation}`)).getRowsJS() as [[bigint | null]];
    if (newest !== null) this.newestBucketMs = Math.max(this.newestBucketMs ?? -Infinity, Number(newest));
  }

  /** One row per (bucket, key) from batch ⊎ realtime; a reader sees the old table or the new one. */
  private async rebuild(connection: DuckDBConnection): Promise<void> {
    const name = this.view.definition.name;
    const both = `(SELECT * FROM ${quoteIdent(batchTable(name))} UNION ALL BY NAME SELECT * EXCLUDE (_partition, _block) FROM ${quoteIdent(realtimeTable(name))})`;
    this.newestBucketMs = null;
    await this.observeNewest(connection, both);
    await connection.run(`CREATE OR REPLACE TABLE ${this.table} AS ${this.view.mergeSql(`(${this.horizonFiltered(this.withoutUnused(both))})`)}`);
    this.stale = false;
    this.ready = true;
  }
}

async function atomically(connection: DuckDBConnection, inTransaction: boolean, work: () => Promise<void>): Promise<void> {
  if (inTransaction) return work();
  await connection.run('BEGIN TRANSACTION');
  try {
    await work();
    await connection.run('COMMIT');
  } catch (error) {
    await connection.run('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
