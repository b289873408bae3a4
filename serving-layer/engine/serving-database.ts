import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import { installSqlMacros } from '../../core/duckdb/sql-macros.ts';
import { bindViews, type BoundView } from '../../core/views/bind-views.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import { createRollupMacroSql, createStateViewSql, rollupMacro, stateView } from '../../core/views/view-rollup.ts';
import { batchTable, createBatchTableSql, createRealtimeTableSql, createServingViewSql } from '../../core/views/view-tables.ts';

/**
 * The serving process's one DuckDB database (in memory): for every view its batch state table,
 * its realtime state table (written by the speed layer in the same process) and the SQL view
 * users query, which merges both on every read (core/views/view-tables.ts) until
 * MaterializedViews points it at a table kept up to date at the speed layer's commit points,
 * and the view's rollups over the same state tables (core/views/view-rollup.ts).
 * Everything that queries or writes view state gets its connections from here.
 */
export class ServingDatabase {
  private constructor(
    readonly instance: DuckDBInstance,
    private served: readonly BoundView[],
    private readonly admin: DuckDBConnection,
  ) {}

  static async create(loaded: LoadedConfig, options: { threads?: number } = {}): Promise<ServingDatabase> {
    const instance = await DuckDBInstance.create(':memory:', options.threads ? { threads: String(options.threads) } : {});
    const admin = await instance.connect();
    try {
      // Master-dataset files never change once renamed into place, yet without this DuckDB reads
      // and parses each footer again at every query that lists the file. Entries are checked
      // against the file's modification time. (Set here, not in the instance options: the
      // parquet extension is loaded only once a connection exists; and before lockDownDatabase.)
      await admin.run('SET parquet_metadata_cache = true');
      await installSqlMacros(admin);
      const bound = await bindViews(loaded, admin);
      for (const view of bound) await createViewObjects(admin, view);
      return new ServingDatabase(instance, bound, admin);
    } catch (error) {
      admin.closeSync();
      instance.closeSync();
      throw error;
    }
  }

  /** A new connection to the database (the caller closes it). */
  connect(): Promise<DuckDBConnection> {
    return this.instance.connect();
  }

  /** The connection used for catalog changes (views over Parquet, batch swaps). */
  get adminConnection(): DuckDBConnection {
    return this.admin;
  }

  /** The views served now, as bound (they change with the definitions: LiveViews). */
  get bound(): readonly BoundView[] {
    return this.served;
  }

  /**
   * Serves `view` from now on (a new definitions version), replacing a served view of that name:
   * its batch table (empty; the caller fills it), merging view, state view and rollup macro, on
   * `connection` in the caller's transaction. Its realtime table is the speed layer's.
   */
  async serveView(connection: DuckDBConnection, view: BoundView): Promise<void> {
    const name = view.view.definition.name;
    await dropViewObjects(connection, name);
    await createViewObjects(connection, view, { realtimeTable: false });
    this.served = [...this.served.filter((b) => b.view.definition.name !== name), view];
  }

  /** The served set now, to put back when the transaction that changes it rolls back. */
  snapshot(): () => void {
    const served = this.served;
    return () => {
      this.served = served;
    };
  }

  /** Stops serving `name`: drops its tables, views and macro (not its realtime table). */
  async dropView(connection: DuckDBConnection, name: string): Promise<void> {
    await dropViewObjects(connection, name);
    this.served = this.served.filter((b) => b.view.definition.name !== name);
  }

  view(name: string): BoundView | undefined {
    return this.bound.find((b) => b.view.definition.name === name);
  }

  close(): void {
    this.admin.closeSync();
    this.instance.closeSync();
  }
}

async function createViewObjects(connection: DuckDBConnection, view: BoundView, options: { realtimeTable?: boolean } = {}): Promise<void> {
  await connection.run(createBatchTableSql(view));
  if (options.realtimeTable ?? true) await connection.run(createRealtimeTableSql(view));
  await connection.run(createServingViewSql(view));
  await connection.run(createStateViewSql(view));
  await connection.run(createRollupMacroSql(view));
}

async function dropViewObjects(connection: DuckDBConnection, name: string): Promise<void> {
  await connection.run(`DROP MACRO TABLE IF EXISTS ${quoteIdent(rollupMacro(name))}`);
  await connection.run(`DROP VIEW IF EXISTS ${quoteIdent(stateView(name))}`);
  await connection.run(`DROP VIEW IF EXISTS ${quoteIdent(name)}`);
  await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(batchTable(name))}`);
}
