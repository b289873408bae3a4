import type { DuckDBConnection } from '@duckdb/node-api';
import { sameCuts } from '../core/batch/batch-manifest.ts';
import { offsetBlock, offsetBlockSql } from '../core/batch/offset-block.ts';
import { inTransaction } from '../core/duckdb/in-transaction.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { BoundView } from '../core/views/bind-views.ts';
import { createRealtimeTableSql, pendingRealtimeTable, realtimeTable } from '../core/views/view-tables.ts';
import { keepRowsSql, rewriteTableSql } from '../core/duckdb/table-rewrite.ts';

export interface RealtimeStateOptions {
  /** Offsets per block: realtime state is kept per (view key, partition, offset block). */
  readonly blockSize: number;
  /** A view is compacted once this many rows (or its compacted size, if larger) were added. */
  readonly compactMinRows?: number;
}

const MAX_GROWTH = 64;

/** Per partition, where the events `staged` lacks begin: at its newest event held, or the cut if above. */
export function stagedSince(staged: StagedFill, cutsExclusive: ReadonlyMap<number, number>): Map<number, number> {
  const since = new Map(cutsExclusive);
  for (const [partition, held] of staged.heldBelow) since.set(partition, Math.max(since.get(partition) ?? 0, held));
  return since;
}

/**
 * A view's partial state over the events committed at one moment, built beside the micro-batches
 * (`RealtimeState.stage`) to be added to its table later (`fillStaged`) with the events committed
 * since.
 */
export interface StagedFill {
  readonly view: string;
  readonly definitionHash: string;
  /** The table holding it, on the shared database (dropped by its owner, used or not). */
  readonly table: string;
  /**
   * Per partition, an offset at or below which it holds every event of the relation it was built
   * from (and above which none): the events committed later lie above it.
   */
  readonly heldBelow: ReadonlyMap<number, number>;
  /** The cuts it was built from: it holds no block below them. */
  readonly fromCuts: ReadonlyMap<number, number>;
}

interface ViewTable {
  readonly bound: BoundView;
  /** The quoted table name, and the statement that creates it. */
  table: string;
  create: string;
  /** State of a view's next definition, not served yet (`pendingRealtimeTable`). */
  pending: boolean;
  /** Rows in the table, and rows added since the last compaction. */
  rows: number;
  addedSinceCompaction: number;
  /** How many times its compacted size the table may grow before the next compaction. */
  growth: number;
}

/**
 * The speed layer's partial state in the shared database: table `realtime__<view>` with the
 * view's key columns, `_partition`, `_block` (= offset // blockSize) and the state columns.
 *
 * Each micro-batch appends its own partial rows, so a key may have many rows per block. A
 * compaction rebuilds the table with one row per (key, partition, block) once the table has grown
 * by its own compacted size (amortised constant work per row added). A view whose keys rarely
 * repeat within a block gains little from it, so a compaction that shrank the table by less than
 * 30% quadruples the growth allowed before the next one (up to 64×: batch handoffs bound the table
 * anyway, by the blocks in flight). Either form gives the same view, because partial states merge
 * exactly (`CompiledView`). Rows never span blocks, so a batch cut (a multiple of blockSize)
 * removes exactly the offsets below it.
 *
 * Every write must run inside the caller's serialisation (one transaction at a time on
 * `connection`); `addEvents` and `dropBelow` expect the caller's transaction.
 */
export class RealtimeState {
  private constructor(
    private readonly connection: DuckDBConnection,
    private tables: ViewTable[],
    private readonly blockSize: number,
    private readonly compactMinRows: number,
  ) {}

  /** Creates (or empties: the state is disposable) the realtime table of every view. */
  static async create(connection: DuckDBConnection, views: readonly BoundView[], options: RealtimeStateOptions): Promise<RealtimeState> {
    const state = new RealtimeState(connection, [], options.blockSize, options.compactMinRows ?? 50_000);
    for (const bound of views) await state.addView(bound, { pending: false });
    return state;
  }

  /**
   * Creates (empty) the realtime table of `bound`: the served one, or with `pending` the state
   * of its next definition beside the served one. Runs in the caller's transaction.
   */
  async addView(bound: BoundView, options: { pending: boolean }): Promise<void> {
    const name = bound.view.definition.name;
    const raw = options.pending ? pendingRealtimeTable(name) : realtimeTable(name);
    const table = quoteIdent(raw);
    this.tables = this.tables.filter((t) => t.table !== table);
    await this.connection.run(`DROP TABLE IF EXISTS ${table}`);
    const create = createRealtimeTableSql(bound, raw);
    await this.connection.run(create);
    this.tables.push({ bound, table, create, pending: options.pending, rows: 0, addedSinceCompaction: 0, growth: 1 });
  }

  /**
   * Adds the partial state of `events` (a relation like a micro-batch's) to one view's table only:
   * how a new definition's state is built from what was consumed before it existed.
   */
  async fill(view: string, options: { pending: boolean }, events: string): Promise<void> {
    const t = this.find(view, options.pending);
    if (!t) throw new Error(`no ${options.pending ? 'pending ' : ''}realtime state for view ${view}`);
    await this.connection.run(`INSERT INTO ${t.table} BY NAME ${t.bound.view.partialSql(events, this.blockKeys())}`);
    t.rows = await this.count(t.table);
  }

  /**
   * Builds the partial state of `bound` over `events` (a relation: rows with `_partition` and
   * `_offset`, those of `events` at or above the cuts `fromCuts`) into a new table `table`, on
   * `connection` in its caller's transaction: not this state's connection, so that the
   * micro-batches go on meanwhile (SpeedLayer.stageFills). Then `staged` says what it holds.
   */
  async stageRows(connection: DuckDBConnection, bound: BoundView, table: string, events: string): Promise<void> {
    await connection.run(createRealtimeTableSql(bound, table));
    await connection.run(`INSERT INTO ${quoteIdent(table)} BY NAME ${bound.view.partialSql(events, this.blockKeys())}`);
  }

  /**
   * What the table `stageRows` built holds, read in the same transaction: its snapshot decides
   * which events it holds; as `events` holds every event of a partition up to some offset (the
   * serving layer's `events` does, unless it lags), the ones committed later are above `heldBelow`.
   */
  async staged(connection: DuckDBConnection, bound: BoundView, table: string, events: string, fromCuts: ReadonlyMap<number, number>): Promise<StagedFill> {
    const quoted = quoteIdent(table);
    // The newest offset held per partition, read from the last block the state has on (a few
    // thousand rows, not the whole relation again); a partition it has no rows of (its events all
    // filtered out) is read whole.
    const blocks = await connection.runAndReadAll(`SELECT _partition, max(_block) FROM ${quoted} GROUP BY ALL`);
    const lastBlocks = blocks.getRows().map(([partition, block]) => `(_partition = ${Number(partition)} AND _offset >= ${Number(block) * this.blockSize})`);
    const known = blocks.getRows().map(([partition]) => Number(partition));
    const where = lastBlocks.length === 0 ? '' : ` WHERE ${lastBlocks.join(' OR ')} OR _partition NOT IN (${known.join(', ')})`;
    const newest = await connection.runAndReadAll(`SELECT _partition, max(_offset) FROM ${events}${where} GROUP BY ALL`);
    const heldBelow = new Map(newest.getRows().map(([partition, offset]) => [Number(partition), Number(offset) + 1]));
    return { view: bound.view.definition.name, definitionHash: bound.view.definitionHash, table, heldBelow, fromCuts: new Map(fromCuts) };
  }

  /**
   * Adds `staged` to the (empty) table of its view: its rows in the blocks at or above
   * `cutsExclusive` (a handoff may have raised them since it was built), then the partial state
   * of `committedSince`: the rows committed since, those at or above `stagedSince(staged,
   * cutsExclusive)` of the relation it was built from. Runs in the caller's transaction. At the
   * cuts it was built from, the staged table itself becomes the view's (renamed: nothing copied
   * while the backfill it precedes runs on the same cores), and no longer exists by its own name.
   */
  async fillStaged(staged: StagedFill, options: { pending: boolean }, committedSince: string, cutsExclusive: ReadonlyMap<number, number>): Promise<void> {
    const t = this.find(staged.view, options.pending);
    if (!t) throw new Error(`no ${options.pending ? 'pending ' : ''}realtime state for view ${staged.view}`);
    if (t.rows === 0 && sameCuts(staged.fromCuts, cutsExclusive)) {
      await this.connection.run(`DROP TABLE ${t.table}`);
      await this.connection.run(`ALTER TABLE ${quoteIdent(staged.table)} RENAME TO ${t.table}`);
    } else {
      const atOrAbove = this.blocksAtOrAboveSql(cutsExclusive);
      await this.connection.run(`INSERT INTO ${t.table} BY NAME SELECT * FROM ${quoteIdent(staged.table)}${atOrAbove ? ` WHERE ${atOrAbove}` : ''}`);
    }
    await this.connection.run(`INSERT INTO ${t.table} BY NAME ${t.bound.view.partialSql(committedSince, this.blockKeys())}`);
    t.rows = await this.count(t.table);
  }

  /** Drops a view's realtime table (served or pending). Runs in the caller's transaction. */
  async removeView(view: string, options: { pending: boolean }): Promise<void> {
    const t = this.find(view, options.pending);
    if (!t) return;
    await this.connection.run(`DROP TABLE IF EXISTS ${t.table}`);
    this.tables = this.tables.filter((other) => other !== t);
  }

  /**
   * The pending state of `view` becomes the served one: the served table is dropped and the
   * pending one takes its name. Runs in the caller's transaction (the swap of its batch state).
   */
  async promote(view: string): Promise<BoundView> {
    const pending = this.find(view, true);
    if (!pending) throw new Error(`no pending realtime state for view ${view}`);
    await this.removeView(view, { pending: false });
    const raw = realtimeTable(view);
    await this.connection.run(`ALTER TABLE ${pending.table} RENAME TO ${quoteIdent(raw)}`);
    pending.table = quoteIdent(raw);
    pending.create = createRealtimeTableSql(pending.bound, raw);
    pending.pending = false;
    return pending.bound;
  }

  /**
   * The set of tables as it is now, to put back (`restore`) when the transaction that changes it
   * (addView, removeView, promote) rolls back: the catalog goes back, so must this.
   */
  snapshot(): () => void {
    const copies = this.tables.map((t) => ({ ...t }));
    return () => {
      this.tables = copies.map((t) => ({ ...t }));
    };
  }

  /** The views whose state is served, as bound. */
  servedViews(): BoundView[] {
    return this.tables.filter((t) => !t.pending).map((t) => t.bound);
  }

  /** The definition whose state a table holds, if any. */
  viewOf(view: string, options: { pending: boolean }): BoundView | undefined {
    return this.find(view, options.pending)?.bound;
  }

  private find(view: string, pending: boolean): ViewTable | undefined {
    return this.tables.find((t) => t.pending === pending && t.bound.view.definition.name === view);
  }

  private blockKeys(): { name: string; sql?: string }[] {
    return [{ name: '_partition' }, { name: '_block', sql: offsetBlockSql('_offset', this.blockSize) }];
  }

  /**
   * Adds the partial state of `events` (schema fields, `_partition`, `_offset`) to every view, in
   * one round trip that also reads back the table sizes.
   */
  async addEvents(events: string): Promise<void> {
    const extraKeys = this.blockKeys();
    const inserts = this.tables.map((t) => `INSERT INTO ${t.table} BY NAME ${t.bound.view.partialSql(events, extraKeys)}`);
    const counts = `SELECT ${this.tables.map((t) => `(SELECT count(*) FROM ${t.table})::DOUBLE`).join(', ')}`;
    const reader = await this.connection.runAndReadAll([...inserts, counts].join(';\n'));
    const rows = reader.getRows()[0] as number[];
    this.tables.forEach((t, i) => {
      t.addedSinceCompaction += rows[i]! - t.rows;
      t.rows = rows[i]!;
    });
  }

  /**
   * Removes the blocks of each partition that lie wholly below its cut (the table is rebuilt from
   * the rows kept, see `keepRowsSql`). `cutsExclusive` holds multiples of blockSize;
   * partitions not in it keep everything. Runs in the caller's transaction.
   */
  async dropBelow(cutsExclusive: ReadonlyMap<number, number>): Promise<void> {
    const atOrAbove = this.blocksAtOrAboveSql(cutsExclusive);
    if (!atOrAbove) return;
    for (const t of this.tables) await this.connection.run(keepRowsSql(t.table, atOrAbove));
    await this.recount();
  }

  /** The condition on a state row that its block is at or above its partition's cut; undefined when no cut is above 0. */
  private blocksAtOrAboveSql(cutsExclusive: ReadonlyMap<number, number>): string | undefined {
    const cases = [...cutsExclusive].filter(([, cut]) => cut > 0).map(([p, cut]) => `WHEN ${p} THEN ${offsetBlock(cut, this.blockSize)}`);
    return cases.length === 0 ? undefined : `_block >= CASE _partition ${cases.join(' ')} ELSE 0 END`;
  }

  /** Compacts the views that grew enough, each in its own transaction. Returns the views compacted. */
  async compact(options: { force?: boolean } = {}): Promise<string[]> {
    const compacted: string[] = [];
    for (const t of this.tables) {
      const due = t.addedSinceCompaction >= Math.max(this.compactMinRows, (t.rows - t.addedSinceCompaction) * t.growth);
      if (!(options.force ? t.addedSinceCompaction > 0 : due)) continue;
      const rows = await inTransaction(this.connection, async () => {
        const merged = t.bound.view.mergeSql(t.table, ['_partition', '_block']);
        await this.connection.run(rewriteTableSql(t.table, t.create, merged));
        return this.count(t.table);
      });
      t.growth = rows > 0.7 * t.rows ? Math.min(MAX_GROWTH, t.growth * 4) : 1;
      t.rows = rows;
      t.addedSinceCompaction = 0;
      compacted.push(t.bound.view.definition.name);
    }
    return compacted;
  }

  /** Re-reads the row counts (after a rewrite, or a rollback that left the tracked ones wrong). */
  async recount(): Promise<void> {
    for (const t of this.tables) {
      t.rows = await this.count(t.table);
      t.addedSinceCompaction = 0;
    }
  }

  private async count(table: string): Promise<number> {
    const reader = await this.connection.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${table}`);
    return reader.getRows()[0]![0] as number;
  }

  /** Rows per served view table (several per key until compacted). */
  rowCounts(): Map<string, number> {
    return new Map(this.tables.filter((t) => !t.pending).map((t) => [t.bound.view.definition.name, t.rows]));
  }
}
