import type { DuckDBConnection } from '@duckdb/node-api';
import { holdsViewAsDefined, type BatchManifest } from '../../core/batch/batch-manifest.ts';
import { batchViewFile } from '../../core/batch/batch-version-files.ts';
import { quoteIdent, quoteLiteral } from '../../core/sql/identifiers.ts';
import type { BoundView } from '../../core/views/bind-views.ts';
import { batchTable } from '../../core/views/view-tables.ts';

/** A batch version read into staging tables, ready to be swapped in. */
export interface StagedBatch {
  readonly manifest: BatchManifest;
  /** Replaces every view's batch state with the staged one; run inside the swap transaction. */
  swap(connection: DuckDBConnection): Promise<void>;
  /** Drops the staging tables (after the swap, or when the swap is abandoned). */
  discard(connection: DuckDBConnection): Promise<void>;
}

function stagingTable(view: string, version: number): string {
  return `staged__${version}__${view}`;
}

/**
 * Reads a batch version's view files into staging tables. This is the slow part and runs before
 * the swap transaction, so the transaction itself only moves rows between in-memory tables.
 * A view whose definition changed since the version was computed gets an empty batch state:
 * its stale rows must not be served (the realtime side covers it until the next run).
 */
export async function stageBatchVersion(
  connection: DuckDBConnection,
  manifest: BatchManifest,
  views: readonly BoundView[],
  storageDir: string,
): Promise<StagedBatch> {
  const staged: { view: BoundView; table: string }[] = [];
  try {
    for (const view of views) {
      const name = view.view.definition.name;
      const table = stagingTable(name, manifest.version);
      const file = batchViewFile(storageDir, manifest, name);
      const columns = view.stateColumns.map((c) => quoteIdent(c.name)).join(', ');
      const source =
        file && holdsViewAsDefined(manifest, name, view.view.definitionHash)
          ? `SELECT ${columns} FROM read_parquet(${quoteLiteral(file)})`
          : `SELECT ${columns} FROM ${quoteIdent(batchTable(name))} WHERE false`;
      await connection.run(`CREATE OR REPLACE TABLE ${quoteIdent(table)} AS ${source}`);
      staged.push({ view, table });
    }
  } catch (error) {
    for (const { table } of staged) await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
    throw error;
  }
  return {
    manifest,
    async swap(tx) {
      for (const { view, table } of staged) {
        const target = quoteIdent(batchTable(view.view.definition.name));
        await tx.run(`DELETE FROM ${target}`);
        await tx.run(`INSERT INTO ${target} SELECT * FROM ${quoteIdent(table)}`);
      }
    },
    async discard(tx) {
      for (const { table } of staged) await tx.run(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
    },
  };
}
