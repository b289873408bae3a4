import type { Archiver } from '../../batch-layer/archiver.ts';
import type { BatchLayer } from '../../batch-layer/batch-layer.ts';
import { formatExactDurationMs } from '../../core/config/duration.ts';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { Role } from '../../core/node/role.ts';
import type { LastRunInfo, StatusInfo, ViewInfo } from '../../serving-layer/http/api-types.ts';
import type { BatchRunOutcome } from '../../core/coordination/batch-run-requests.ts';
import type { PartitionOwnership } from '../../core/coordination/partition-ownership.ts';
import type { Logger } from '../../core/observability/logger.ts';
import type { IngestRefusals } from '../../serving-layer/ingest/ingest-refusals.ts';
import { rollupMacro } from '../../core/views/view-rollup.ts';
import type { BatchProgress } from '../../core/batch/batch-progress.ts';
import type { BoundView } from '../../core/views/bind-views.ts';
import { backfillOf } from './view-backfill.ts';
import type { Coordination } from './coordination.ts';
import type { RealtimeServing } from './realtime-serving.ts';

function lastRunInfo(run: BatchRunOutcome): LastRunInfo {
  return { ok: run.ok, ...(run.version === undefined ? {} : { version: run.version }), ...(run.error === undefined ? {} : { error: run.error }), finishedAtMs: Date.parse(run.finishedAt) };
}

export interface NodeStatusSources {
  readonly logger: Logger;
  readonly memberId: string;
  readonly roles: readonly Role[];
  readonly loaded: LoadedConfig;
  readonly coordination: Coordination;
  readonly realtime?: RealtimeServing;
  readonly batch?: BatchLayer;
  readonly archiver?: Archiver;
  /** Who archives which partition, for the members' list. */
  readonly ownership: PartitionOwnership;
  /** Lines refused by `POST /v1/events`, where this node answers it. */
  readonly refusals?: IngestRefusals;
  /** The definitions version this process runs (it follows the published one). */
  readonly definitionsVersion: () => number;
}

/** `GET /v1/status` and `GET /v1/views`, assembled from whichever layers this process runs. */
export class NodeStatus {
  private readonly startedAtMs = Date.now();

  constructor(private readonly sources: NodeStatusSources) {}

  async status(): Promise<StatusInfo> {
    const { realtime, batch, coordination } = this.sources;
    const now = Date.now();
    const manifest = realtime?.appliedManifest ?? (await coordination.manifestStore.current());
    const publishedAtMs = manifest ? Date.parse(manifest.finishedAt) : null;
    const speed = realtime?.speed.status();
    const batchStatus = batch ? await batch.status() : undefined;
    const leaderId = await coordination.election.leaderId().catch((error: unknown) => this.unavailable('batch master', error, undefined));
    const lagByPartition = Object.fromEntries((speed?.partitions ?? []).map((p) => [String(p.partition), p.lagRecords]));
    const realtimeUpdatedAtMs = speed?.microBatches.lastCommittedAtMs ?? null;
    const [members, holders] = await Promise.all([
      coordination.members.members().catch((error: unknown) => this.unavailable('members', error, [])),
      this.sources.ownership.holders().catch((error: unknown) => this.unavailable('archiver partitions', error, new Map<number, string>())),
    ]);
    const archiver = this.sources.archiver ? await this.sources.archiver.status() : undefined;
    const published = await coordination.definitions.current().catch((error: unknown) => this.unavailable('definitions', error, undefined));
    const rejected = realtime ? await realtime.rejectedCounts() : { total: 0, byReason: {}, notKept: 0 };
    return {
      nodeId: this.sources.memberId,
      mode: coordination.mode,
      roles: this.sources.roles,
      isMaster: batchStatus?.isMaster ?? false,
      batch: {
        version: manifest?.version ?? null,
        cuts: manifest?.cuts ?? {},
        publishedAtMs,
        ageMs: publishedAtMs === null ? null : now - publishedAtMs,
        ...(batchStatus ? { nextRunAtMs: batchStatus.nextRunAt ? Date.parse(batchStatus.nextRunAt) : null } : {}),
        lastError: batchStatus?.lastRun && !batchStatus.lastRun.ok ? (batchStatus.lastRun.error ?? 'failed') : (realtime?.lastError ?? null),
      },
      lag: {
        records: speed ? Object.values(lagByPartition).reduce((a, b) => a + b, 0) : null,
        byPartition: lagByPartition,
      },
      freshness: { realtimeUpdatedAtMs, realtimeAgeMs: realtimeUpdatedAtMs === null ? null : now - realtimeUpdatedAtMs },
      rejected,
      ...(speed ? { events: { tailRows: speed.eventsTail.tailRows, maxTailRows: speed.eventsTail.maxRows, maxRecentRows: speed.eventsTail.maxRecentRows, lagging: speed.eventsTail.lagging, lagRecords: speed.eventsTail.lagRecords } } : {}),
      refusedAtIngest: this.sources.refusals?.counted() ?? { total: 0, byReason: {} },
      definitions: { version: published?.version ?? null, running: this.sources.definitionsVersion() },
      members: members.map((m) => ({
        id: m.id,
        roles: m.roles as Role[],
        url: m.url,
        definitionsVersion: m.definitionsVersion ?? null,
        isMaster: m.id === leaderId,
        partitions: [...holders].filter(([, holder]) => holder === m.id).map(([p]) => p).sort((a, b) => a - b),
      })),
      ...(archiver ? { archiver: { partitions: archiver.partitions, gapOffsets: archiver.gapOffsets } } : {}),
      ...(batchStatus ? { lastRun: batchStatus.lastRun ? lastRunInfo(batchStatus.lastRun) : null } : {}),
      startedAtMs: this.startedAtMs,
    };
  }

  /** A part of the status ZooKeeper could not tell: logged, and left out rather than failing the whole. */
  private unavailable<T>(what: string, error: unknown, fallback: T): T {
    this.sources.logger.warn({ err: error }, `status: cannot read ${what}`);
    return fallback;
  }

  /** `GET /v1/views`: the served views, then the added ones still backfilling, with their progress. */
  async views(): Promise<ViewInfo[]> {
    const { realtime } = this.sources;
    if (!realtime) return [];
    const progress = realtime.liveViews.pendingViews().length > 0 ? await this.backfillProgress() : undefined;
    // Everything else is read together, after the await: a handoff that promoted a view meanwhile
    // would otherwise list it twice, as served and as backfilling.
    const now = Date.now();
    const manifest = realtime.appliedManifest;
    const realtimeUpdatedAtMs = realtime.speed.status().microBatches.lastCommittedAtMs ?? null;
    const newest = Math.max(realtimeUpdatedAtMs ?? 0, manifest ? Date.parse(manifest.finishedAt) : 0);
    const freshness = { batchVersion: manifest?.version ?? null, realtimeUpdatedAtMs, ageMs: newest === 0 ? null : now - newest };
    const pending = realtime.liveViews.pendingViews();
    const describe = ({ view, outputColumns }: BoundView) => ({
      name: view.definition.name,
      columns: outputColumns.map((c) => ({ name: c.name, type: c.type })),
      window: view.definition.windowMs === null ? null : formatExactDurationMs(view.definition.windowMs),
      windowMs: view.definition.windowMs,
      dimensions: view.definition.dimensions,
      measures: view.definition.measures.map((m) => ({ name: m.name, aggregate: m.kind, of: m.argumentSql })),
      rollup: rollupMacro(view.definition.name),
    });
    const served = realtime.liveViews.servedViews().map((bound): ViewInfo => {
      const next = realtime.liveViews.pendingView(bound.view.definition.name);
      return { ...describe(bound), freshness, state: 'serving', ...(next ? { backfill: backfillOf(next, progress) } : {}) };
    });
    const added = pending
      .filter((p) => p.kind === 'added')
      .map((p): ViewInfo => ({ ...describe(p.bound), freshness: { batchVersion: null, realtimeUpdatedAtMs: null, ageMs: null }, state: 'backfilling', backfill: backfillOf(p, progress) }));
    return [...served, ...added];
  }

  /**
   * `GET /v1/views?waitFor=N`: true once this node serves definitions version N or a later one
   * with every view exact (none backfilling, added or changed); false if `timeoutMs` ends or
   * `signal` aborts first (the client went away), or if this node serves no views. Woken by the
   * commits that change what readers see (LiveViews.onCommitted), not by polling: waiting costs
   * nothing while the backfill runs, and answers at the commit that makes the views exact.
   */
  viewsSettled(version: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const liveViews = this.sources.realtime?.liveViews;
    if (!liveViews) return Promise.resolve(false);
    const settled = () => liveViews.version >= version && liveViews.pendingViews().length === 0;
    if (settled()) return Promise.resolve(true);
    if (signal?.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (outcome: boolean) => {
        clearTimeout(timer);
        stopListening();
        signal?.removeEventListener('abort', aborted);
        resolve(outcome);
      };
      const aborted = () => done(false);
      const timer = setTimeout(aborted, timeoutMs);
      const stopListening = liveViews.onCommitted(() => {
        if (settled()) done(true);
      });
      signal?.addEventListener('abort', aborted, { once: true });
    });
  }

  /** The batch master's progress record, undefined when it cannot be read (logged). */
  async backfillProgress(): Promise<BatchProgress | undefined> {
    const store = this.sources.coordination.batchProgress;
    if (!store) return undefined;
    return store.current().catch((error: unknown) => this.unavailable('the batch progress', error, undefined));
  }

}
