import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent, quoteLiteral } from '../../core/sql/identifiers.ts';
import { eventTableDdl, type BoundView } from '../../core/views/bind-views.ts';
import type { EventSchema } from '../../core/views/view-definition.ts';
import { batchTable, realtimeTable } from '../../core/views/view-tables.ts';

/** An event as tests write it: the timestamp in epoch ms, the schema's other fields by name. */
export interface TestEvent {
  readonly ts: number;
  readonly partition?: number;
  readonly offset?: number;
  readonly [field: string]: string | number | boolean | null | undefined;
}

/**
 * Fills a serving database's view tables the way the two layers do, with each view's own compiled
 * partial SQL: `toBatch` as a batch run would (merged state per key), `toRealtime` as the speed
 * layer does (partial state per key, partition and offset block). For tests and benches only.
 */
export class ViewFeeder {
  private staged = 0;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly schema: EventSchema,
    private readonly views: readonly BoundView[],
    private readonly blockSize = 1_000,
  ) {}

  /**
   * Adds a micro-batch to every view's realtime state; `afterCommit` then runs on the same
   * connection with the micro-batch's events relation, as the speed layer's hook would.
   */
  async toRealtime(events: readonly TestEvent[], afterCommit?: (connection: DuckDBConnection, events: string) => Promise<void>): Promise<void> {
    await this.withStaging(events, async (table) => {
      for (const bound of this.views) {
        const partial = bound.view.partialSql(table, [{ name: '_partition' }, { name: '_block', sql: `_offset // ${this.blockSize}` }]);
        await this.connection.run(`INSERT INTO ${quoteIdent(realtimeTable(bound.view.definition.name))} BY NAME ${partial}`);
      }
      await afterCommit?.(this.connection, table);
    });
  }

  /**
   * A batch handoff: realtime blocks below `blockExclusive` move into the batch tables in one
   * transaction (the totals of batch ⊎ realtime do not change).
   */
  async handOff(blockExclusive: number): Promise<void> {
    await this.connection.run('BEGIN TRANSACTION');
    for (const bound of this.views) {
      const name = bound.view.definition.name;
      const columns = [...bound.view.keyColumns, ...bound.view.stateColumns.map((s) => s.name)].map(quoteIdent).join(', ');
      await this.connection.run(
        `INSERT INTO ${quoteIdent(batchTable(name))} (${columns}) SELECT ${columns} FROM ${quoteIdent(realtimeTable(name))} WHERE _block < ${blockExclusive}`,
      );
      await this.connection.run(`DELETE FROM ${quoteIdent(realtimeTable(name))} WHERE _block < ${blockExclusive}`);
    }
    await this.connection.run('COMMIT');
  }

  async toBatch(events: readonly TestEvent[]): Promise<void> {
    await this.withStaging(events, async (table) => {
      for (const bound of this.views) {
        await this.connection.run(`INSERT INTO ${quoteIdent(batchTable(bound.view.definition.name))} BY NAME ${bound.view.partialSql(table)}`);
      }
    });
  }

  /** Empties every view's batch and realtime tables. */
  async clear(): Promise<void> {
    for (const bound of this.views) {
      await this.connection.run(`DELETE FROM ${quoteIdent(batchTable(bound.view.definition.name))}`);
      await this.connection.run(`DELETE FROM ${quoteIdent(realtimeTable(bound.view.definition.name))}`);
    }
  }

  private async withStaging(events: readonly TestEvent[], use: (table: string) => Promise<void>): Promise<void> {
    if (events.length === 0) return;
    const table = `__feeder_${this.staged++}`;
    await this.connection.run(eventTableDdl(table, this.schema, { temp: true }));
    try {
      for (let i = 0; i < events.length; i += 2_000) {
        const rows = events.slice(i, i + 2_000).map((e, j) => this.row(e, i + j));
        await this.connection.run(`INSERT INTO ${quoteIdent(table)} VALUES ${rows.join(',\n')}`);
      }
      await use(quoteIdent(table));
    } finally {
      await this.connection.run(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
    }
  }

  private row(event: TestEvent, index: number): string {
    const values = this.schema.fields.map((field) => {
      const value = field.name === this.schema.timestampField ? event.ts : event[field.name];
      if (value === null || value === undefined) return 'NULL';
      if (field.type === 'TIMESTAMP') return `epoch_ms(${Number(value)}::BIGINT)`;
      if (typeof value === 'string') return quoteLiteral(value);
      return String(value);
    });
    return `(${[...values, event.partition ?? 0, event.offset ?? index].join(', ')})`;
  }
}
