import type { Role } from '../../core/node/role.ts';

/** Until cli/node/lambda-node.ts and cli/commands/start-command.ts import it from core/node/role.ts. */

/**
 * The JSON shapes of `GET /v1/views` and `GET /v1/status`. The engine and the process wiring
 * fill them; the HTTP server passes them through unchanged, and `lambda status` prints them.
 * Times are epoch milliseconds (`…AtMs`), durations milliseconds (`…Ms`); null means "not yet".
 */

export interface ColumnInfo {
  readonly name: string;
  /** DuckDB type: TIMESTAMP, VARCHAR, BIGINT, DOUBLE… */
  readonly type: string;
}

/** One queryable view: a table named after it in SQL. */
export interface ViewInfo {
  readonly name: string;
  /** `window_start` (absent for running totals), the dimensions, then the measures. */
  readonly columns: readonly ColumnInfo[];
  /** Tumbling event-time bucket width as the config writes durations (`1m`); null for running totals. */
  readonly window: string | null;
  /** The same width in milliseconds; null for running totals. */
  readonly windowMs: number | null;
  readonly dimensions: readonly string[];
  readonly measures: readonly MeasureInfo[];
  /** The SQL table macro that re-aggregates the view exactly: `rollup_<view>` (core/views/view-rollup.ts). */
  readonly rollup: string;
  readonly freshness: ViewFreshness;
  /**
   * `serving`: queries answer it, exactly. `backfilling`: an added view whose history the batch
   * master is computing; queries on it get 409 until it serves (issue 16).
   */
  readonly state: 'serving' | 'backfilling';
  /** While backfilling, or while a changed definition backfills behind the served one: how far. */
  readonly backfill?: BackfillInfo;
}

/** The body of `GET /v1/views`. */
export interface ViewsAnswer {
  readonly views: readonly ViewInfo[];
  /** Only with `?waitFor=N`: whether the node serves version N (or later) with every view exact. */
  readonly settled?: boolean;
}

/** A view definition being made exact: the batch master's progress over its history. */
export interface BackfillInfo {
  /** `added`: the view is new; `changed`: its old definition serves until the new one is exact. */
  readonly kind: 'added' | 'changed';
  /** 0..1, the batch run's estimate for this view; 1 once computed (it serves at the next handoff). */
  readonly progress: number;
  /** The definitions version that introduced the definition. */
  readonly definitionsVersion: number;
  readonly sinceMs: number;
}

/** A measure and the rule its rollups merge it by: `{"name": "avg_latency", "aggregate": "avg", "of": "latency_ms"}`. */
export interface MeasureInfo {
  readonly name: string;
  /** count, sum, min, max, avg or approx_count_distinct. */
  readonly aggregate: string;
  /** The aggregated SQL expression as declared; `*` for count(*). */
  readonly of: string;
}

export interface ViewFreshness {
  /** The batch version merged into the view; null before the first batch. */
  readonly batchVersion: number | null;
  /** When the speed layer last folded a micro-batch into the view; null if it never did. */
  readonly realtimeUpdatedAtMs: number | null;
  /** Now minus the newest of batch publication and realtime update: how stale the view can be. */
  readonly ageMs: number | null;
}

export interface BatchStatus {
  /** The published version this node serves; null before the first batch. */
  readonly version: number | null;
  /** partition → cutExclusive of that version (offsets below it are in the batch). */
  readonly cuts: Readonly<Record<string, number>>;
  /** When the version was published (its run finished); null before the first batch. */
  readonly publishedAtMs: number | null;
  /** Now minus publishedAtMs. */
  readonly ageMs: number | null;
  /** The next scheduled run on the batch master; null on other nodes. */
  readonly nextRunAtMs?: number | null;
  /** The last run's failure, if it failed. */
  readonly lastError?: string | null;
}

export interface LagStatus {
  /** Records in the source not yet folded into realtime state, summed over partitions. */
  readonly records: number | null;
  /** partition → records behind. */
  readonly byPartition: Readonly<Record<string, number>>;
}

export interface FreshnessStatus {
  /** When the speed layer last completed a micro-batch. */
  readonly realtimeUpdatedAtMs: number | null;
  /** Now minus realtimeUpdatedAtMs. */
  readonly realtimeAgeMs: number | null;
}

export interface RejectedStatus {
  /**
   * The rejected records (bad JSON, wrong types, missing timestamp…) the `rejected` table stands
   * for, each once: archived below the batch cuts plus the speed layer's at or above them, counted
   * in one snapshot with that table. Not a per-process counter: a restart keeps it.
   */
  readonly total: number;
  readonly byReason: Readonly<Record<string, number>>;
  /**
   * Of `total`, the records above the cuts the speed layer counts but no longer keeps as rows
   * (beyond speed.maxRejectedKept): `count(*) FROM rejected` is `total - notKept`. They are rows
   * again once a batch version covers them (read from the archived rejected files).
   */
  readonly notKept: number;
}

/** The `events` table: the archive plus the speed layer's tail of accepted events above it. */
export interface EventsStatus {
  /**
   * Accepted events the speed layer keeps as rows: those not archived yet (at most
   * speed.maxEventsTail, `maxTailRows`) and the newest archived ones (at most speed.recentEvents,
   * `maxRecentRows`), which `events` reads from memory.
   */
  readonly tailRows: number;
  readonly maxTailRows: number;
  readonly maxRecentRows?: number;
  /**
   * True while `events` lacks accepted events the views hold: the tail was full, and the records
   * after it are in `events` again once the archive reaches them.
   */
  readonly lagging: boolean;
  /** Offsets (accepted and rejected records) the views hold and `events` does not yet. */
  readonly lagRecords: number;
}

/** Lines `POST /v1/events` refused as malformed since this process started; never stored. */
export interface RefusedAtIngestStatus {
  readonly total: number;
  readonly byReason: Readonly<Record<string, number>>;
}

export interface MemberInfo {
  readonly id: string;
  readonly roles: readonly Role[];
  /** The member's HTTP address (every node has one). */
  readonly url: string | null;
  readonly isMaster: boolean;
  /** The definitions version the member runs; null for a member that does not say. */
  readonly definitionsVersion?: number | null;
  /** Partitions whose archiving this member holds the lock of (archivers only). */
  readonly partitions: readonly number[];
}

/** `GET /v1/health`. */
export interface HealthInfo {
  readonly status: 'ok' | 'starting' | 'stopping';
  readonly nodeId: string;
  readonly roles: readonly Role[];
}

/** The archiver's part of a node's status. */
export interface ArchiverStatusInfo {
  /** The partitions this node archives now, with their positions. */
  readonly partitions: readonly {
    readonly partition: number;
    /** Everything below it is in the master dataset. */
    readonly archivedEndExclusive: number;
    /** Everything below it has been read. */
    readonly readEndExclusive: number;
    readonly highWatermark?: number;
  }[];
  /** Offsets lost to retention before they were archived, over all partitions. */
  readonly gapOffsets: number;
}

/** The batch master's last run, as this node saw it (batch role only). */
export interface LastRunInfo {
  readonly ok: boolean;
  readonly version?: number;
  readonly error?: string;
  readonly finishedAtMs: number;
}

export interface StatusInfo {
  /** This node's id (node.id: stable across restarts). */
  readonly nodeId: string;
  /** `cluster` with ZooKeeper, `single-node` without. */
  readonly mode: 'cluster' | 'single-node';
  readonly roles: readonly Role[];
  /** Whether this process is the batch master. */
  readonly isMaster: boolean;
  readonly batch: BatchStatus;
  readonly lag: LagStatus;
  readonly freshness: FreshnessStatus;
  readonly rejected: RejectedStatus;
  /** Where this node's speed layer runs (serving nodes). */
  readonly events?: EventsStatus;
  /** Single-node `POST /v1/events` only (zero elsewhere): not part of `rejected`. */
  readonly refusedAtIngest: RefusedAtIngestStatus;
  /**
   * `version`: the definitions published now (null when unreadable); `running`: the version this
   * node runs. They differ until the node is restarted (issue 16, phase 1).
   */
  readonly definitions?: { readonly version: number | null; readonly running: number };
  /** Every live process of the cluster (just this one in single-node mode). */
  readonly members: readonly MemberInfo[];
  /** On archiver nodes. */
  readonly archiver?: ArchiverStatusInfo;
  /** On batch nodes: this node's last batch run, when it ran one. */
  readonly lastRun?: LastRunInfo | null;
  readonly startedAtMs: number;
}
