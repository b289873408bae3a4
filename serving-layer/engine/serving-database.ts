import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import { installSqlMacros } from '../../core/duckdb/sql-macros.ts';
import { bindViews, type BoundView } from '../../core/views/bind-views.ts';
import { createRollupMacroSql, createStateViewSql } from '../../core/views/view-rollup.ts';
import { createBatchTableSql, createRealtimeTableSql, createServingViewSql } from '../../core/views/view-tables.ts';

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
    readonly bound: readonly BoundView[],
    private readonly admin: DuckDBConnection,
  ) {}

  static async create(loaded: LoadedConfig, options: { threads?: number } = {}): Promise<ServingDatabase> {
    const instance = await DuckDBInstance.create(':memory:', options.threads ? { threads: String(options.threads) } : {});
    const admin = await instance.connect();
    try {
      await installSqlMacros(admin);
      const bound = await bindViews(loaded, admin);
      for (const view of bound) {
        await admin.run(createBatchTableSql(view));
        await admin.run(createRealtimeTableSql(view));
        await admin.run(createServingViewSql(view));
        await admin.run(createStateViewSql(view));
        await admin.run(createRollupMacroSql(view));
      }
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

  view(name: string): BoundView | undefined {
    return this.bound.find((b) => b.view.definition.name === name);
  }

  close(): void {
    this.admin.closeSync();
    this.instance.closeSync();
  }
}
