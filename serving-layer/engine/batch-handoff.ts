import type { DuckDBConnection } from '@duckdb/node-api';
import { holdsViewAsDefined, type BatchManifest } from '../../core/batch/batch-manifest.ts';
import { batchViewFile, sameStateFile } from '../../core/batch/batch-version-files.ts';
import type { BatchManifestStore } from '../../core/coordination/batch-manifest-store.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { quoteIdent, quoteLiteral } from '../../core/sql/identifiers.ts';
import type { BoundView } from '../../core/views/bind-views.ts';
import { batchTable } from '../../core/views/view-tables.ts';
import type { BatchSwap, RealtimeViewsEditor } from '../../speed-layer/index.ts';
import type { LiveViews } from './live-views.ts';
import type { MasterDatasetViews, MasterViewsRefresh } from './master-dataset-views.ts';
import type { ServingDatabase } from './serving-database.ts';

/**
 * The speed layer's half of the handoff (`SpeedLayer.applyBatch`): checks that the manifest's cuts
 * can be handed over exactly, then, serialised with its micro-batches, in ONE transaction on the
 * shared database runs `inTransaction`, drops its realtime blocks and rejected records below the
 * cuts and lets its listeners re-materialize. Rolled back entirely if any of it throws.
 */
export interface RealtimeHandoff {
  /**
   * `inTransaction` says which views it left materialized as they are (the listeners rebuild the
   * others); `committed` runs after the commit, still serialised with the micro-batches.
   */
  applyBatch(manifest: BatchManifest, inTransaction: (connection: DuckDBConnection, editor?: RealtimeViewsEditor) => Promise<BatchSwap>, committed?: () => void): Promise<void>;
}

export interface BatchHandoffOptions {
  readonly database: ServingDatabase;
  readonly realtime: RealtimeHandoff;
  readonly masterViews: MasterDatasetViews;
  /** Where batch versions are (`storage.dir`). */
  readonly storageDir: string;
  readonly logger: Logger;
  /** The views following the definitions: a version's pending views it holds serve with it. */
  readonly liveViews?: LiveViews;
}

/**
 * The handoff from realtime state to each published batch version (DESIGN.md, "Exact handoff"):
 *   1. manifest seen: versions apply one at a time, in order; one not newer than the applied
 *      version is ignored;
 *   2. files staged: the version's view files are read into staging tables, outside any
 *      transaction (the slow part);
 *   3. one transaction: the batch tables are swapped for the staged ones, `events`/`rejected`
 *      split at the new cuts, the realtime blocks below the cuts dropped and the views
 *      re-materialized (these two by the speed layer). Queries see the old pair or the new one.
 *      At unchanged cuts a view whose state file the version shares with the serving one is
 *      neither swapped nor re-materialized: neither of its state tables changes.
 * A failed handoff leaves the previous version serving; `lastError` and the log say why.
 */
export class BatchHandoff {
  private queue: Promise<void> = Promise.resolve();
  private applied: BatchManifest | undefined;
  /** The newest version published, applied or not (a handoff may wait for this node's definitions). */
  private latest: BatchManifest | undefined;
  private lastFailure: string | undefined;

  constructor(private readonly options: BatchHandoffOptions) {}

  /** The batch version merged into the views now. */
  get appliedManifest(): BatchManifest | undefined {
    return this.applied;
  }

  get lastError(): string | undefined {
    return this.lastFailure;
  }

  /** Applies each manifest the store publishes from now on, in the queue; returns the unwatch. */
  follow(store: Pick<BatchManifestStore, 'watch'>): () => void {
    return store.watch((manifest) => {
      if (!this.latest || manifest.version > this.latest.version) this.latest = manifest;
      void this.enqueue(() => this.apply(manifest), `applying batch version ${manifest.version} failed; the previous one keeps serving`);
    });
  }

  /** Applies the newest published version if it is not applied yet (after this node's definitions changed). */
  retryLatest(): Promise<void> {
    const latest = this.latest;
    if (!latest || (this.applied && latest.version <= this.applied.version)) return this.queue;
    return this.enqueue(() => this.apply(latest), `applying batch version ${latest.version} failed; the previous one keeps serving`);
  }

  /** `events`/`rejected` pick up newly archived files, in the queue (the split uses the applied cuts). */
  refreshFiles(): Promise<void> {
    const { masterViews, database } = this.options;
    const refresh = async () => masterViews.committed(await masterViews.refresh(database.adminConnection, this.applied));
    return this.enqueue(refresh, 'refreshing events/rejected from the master dataset failed');
  }

  /** Runs `task` in the queue (no version is applied meanwhile); its failure is the caller's. */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Resolves when every queued step has run. */
  settled(): Promise<void> {
    return this.queue;
  }

  /** Steps 2 and 3 for one manifest; throws if it failed. Outside the queue: call before `follow`. */
  async apply(manifest: BatchManifest): Promise<void> {
    if (this.applied && manifest.version <= this.applied.version) return;
    if (!this.latest || manifest.version > this.latest.version) this.latest = manifest;
    const { database, realtime, masterViews, liveViews } = this.options;
    const unheld = liveViews?.unheldServedViews(manifest) ?? [];
    if (unheld.length > 0) {
      // Not a failure: the definitions watch is on its way (retryLatest applies it then).
      this.options.logger.info(
        { version: manifest.version, views: unheld },
        `batch version ${manifest.version} was computed from other definitions of ${unheld.join(', ')} than this node runs; it is applied once this node runs the same definitions`,
      );
      return;
    }
    const startedMs = performance.now();
    let stagedMs = 0;
    /** From the start until the transaction began: staging, then the micro-batch in progress. */
    let beganMs = 0;
    const connection = await database.connect();
    try {
      const pending = liveViews?.heldPending(manifest) ?? [];
      const staged = await stageBatchVersion(connection, manifest, database.bound, this.options.storageDir, pending.map((p) => p.bound), this.applied);
      stagedMs = performance.now() - startedMs;
      try {
        let refreshed: MasterViewsRefresh | undefined;
        // A rollback puts the catalog back; the views' in-memory state must follow it.
        const restore = liveViews?.snapshot();
        await realtime
          .applyBatch(
            manifest,
            async (tx, editor) => {
              beganMs = performance.now() - startedMs;
              await staged.swap(tx);
              // A promoted view serves merging on read; it is materialized right after the commit.
              const promoted = liveViews && editor ? await liveViews.promoteInHandoff(tx, editor, manifest, staged.pendingTables) : [];
              refreshed = await masterViews.refresh(tx, manifest);
              return { materializedCurrent: new Set([...staged.kept, ...promoted]) };
            },
            () => masterViews.committed(refreshed!),
          )
          .catch((error: unknown) => {
            restore?.();
            throw error;
          });
        liveViews?.committed();
      } finally {
        await staged.discard(connection);
      }
      this.applied = manifest;
      this.lastFailure = undefined;
      const tookMs = Math.round(performance.now() - startedMs);
      this.options.logger.info({ version: manifest.version, cuts: manifest.cuts, kept: [...staged.kept], stagedMs: Math.round(stagedMs), waitedMs: Math.round(beganMs - stagedMs), tookMs }, 'serving batch version');
      await liveViews?.materializePromoted();
    } finally {
      connection.closeSync();
    }
  }

  private enqueue(task: () => Promise<void>, failure: string): Promise<void> {
    this.queue = this.queue.then(task).catch((error: unknown) => {
      this.lastFailure = (error as Error).message;
      this.options.logger.error({ err: error }, failure);
    });
    return this.queue;
  }
}

/** A batch version read into staging tables, ready to be swapped in. */
export interface StagedBatch {
  readonly manifest: BatchManifest;
  /** Replaces every served view's batch state with the staged one; run inside the swap transaction. */
  swap(connection: DuckDBConnection): Promise<void>;
  /** Staged batch state of pending view definitions (view → staging table), for LiveViews to promote. */
  readonly pendingTables: ReadonlyMap<string, string>;
  /** Served views whose batch state is the serving version's very file: left as it is, not swapped. */
  readonly kept: ReadonlySet<string>;
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
 * its stale rows must not be served (the realtime side covers it until the next run). A view whose
 * state is the very file `applied` (the version serving) holds is left as it is, not staged.
 */
export async function stageBatchVersion(
  connection: DuckDBConnection,
  manifest: BatchManifest,
  views: readonly BoundView[],
  storageDir: string,
  /** Pending definitions the version holds (LiveViews): staged beside the served ones, not swapped. */
  pendingViews: readonly BoundView[] = [],
  applied?: BatchManifest,
): Promise<StagedBatch> {
  const staged: { view: BoundView; table: string; pending: boolean }[] = [];
  const kept = new Set<string>();
  try {
    for (const [view, pending] of [...views.map((v) => [v, false] as const), ...pendingViews.map((v) => [v, true] as const)]) {
      const name = view.view.definition.name;
      if (!pending && applied && (await sameStateFile(storageDir, applied, manifest, name, view.view.definitionHash))) {
        kept.add(name);
        continue;
      }
      const table = `${stagingTable(name, manifest.version)}${pending ? '__pending' : ''}`;
      const file = batchViewFile(storageDir, manifest, name);
      const columns = view.stateColumns.map((c) => quoteIdent(c.name)).join(', ');
      const source =
        file && holdsViewAsDefined(manifest, name, view.view.definitionHash)
          ? `SELECT ${columns} FROM read_parquet(${quoteLiteral(file)})`
          : `SELECT ${columns} FROM ${quoteIdent(batchTable(name))} WHERE false`;
      await connection.run(`CREATE OR REPLACE TABLE ${quoteIdent(table)} AS ${source}`);
      staged.push({ view, table, pending });
    }
  } catch (error) {
    for (const { table } of staged) await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
    throw error;
  }
  return {
    manifest,
    kept,
    pendingTables: new Map(staged.filter((s) => s.pending).map((s) => [s.view.view.definition.name, s.table])),
    async swap(tx) {
      for (const { view, table } of staged.filter((s) => !s.pending)) {
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
