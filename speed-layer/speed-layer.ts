import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import { cutsOf, type BatchManifest } from '../core/batch/batch-manifest.ts';
import { checkHandoff } from '../core/batch/check-handoff.ts';
import type { LoadedConfig } from '../core/config/load-config.ts';
import { LambdaError } from '../core/errors/index.ts';
import type { RejectReason } from '../core/events/decode-event.ts';
import { createLogger, type Logger } from '../core/observability/logger.ts';
import type { RecordSource, SourceBatch, SourceGap, SourceSubscription } from '../core/source/record-source.ts';
import { bindViews, type BoundView } from '../core/views/bind-views.ts';
import { MicroBatchDecoder, type DecodedMicroBatch } from './micro-batch-decoder.ts';
import { MicroBatcher } from './micro-batcher.ts';
import { PartitionProgress, type PartitionStatus } from './partition-progress.ts';
import { nextOffsets, runLength, splitRun, totalLength, type RecordRun } from './record-run.ts';
import { RealtimeState, stagedSince, type StagedFill } from './realtime-state.ts';
import { REJECTED_REALTIME_TABLE, RejectedRecords } from './rejected-records.ts';
import { EventsTail, type EventsTailSource, type EventsTailStatus } from './events-tail.ts';
import { SerialLock } from '../core/duckdb/serial-lock.ts';
import { SpeedMetrics, type MicroBatchStats } from './speed-metrics.ts';
import { aboveCutsRelationSql } from './above-cuts-sql.ts';
import { inTransaction } from '../core/duckdb/in-transaction.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';

/** Tables of fills built beside the micro-batches (`SpeedLayer.stageFills`) are named so. */
export const STAGED_FILL_TABLE_PREFIX = 'realtime_staged_fill__';

export interface SpeedLayerOptions {
  readonly loaded: LoadedConfig;
  readonly source: RecordSource;
  /** The database the serving layer queries: realtime state lives in its `realtime__<view>` tables. */
  readonly instance: DuckDBInstance;
  /** The batch version current at start: reading starts at its cuts; none means from the beginning. */
  readonly manifest?: BatchManifest;
  readonly metrics?: Registry;
  readonly logger?: Logger;
  /** Consumer group; by default one of its own, so that the process reads every partition. */
  readonly groupId?: string;
  /** A partition behind the log end that has not advanced for this long counts as stalled. */
  readonly stallTimeoutMs?: number;
  /** How often the log end of every partition is read, for lag. */
  readonly highWatermarkRefreshMs?: number;
}

/**
 * What other parts of the process (alerting, the serving layer's materialized views) do at the
 * speed layer's commit points. All calls are serialised with every write to realtime state.
 */
export interface RealtimeListener {
  /**
   * Inside each micro-batch's transaction, after its realtime rows are written, on the speed
   * layer's connection; `events` names the relation of the micro-batch's good decoded events
   * (schema fields, `_partition`, `_offset`), undefined when it had none. A throw rolls the
   * micro-batch back; it is then retried.
   */
  microBatchInTransaction?(connection: DuckDBConnection, events: string | undefined): Promise<void>;
  /** After a micro-batch committed (still serialised). A throw is logged, never retried. */
  microBatchCommitted?(connection: DuckDBConnection): Promise<void>;
  /**
   * Inside the handoff transaction of `applyBatch`, after the batch tables were swapped and the
   * realtime blocks below the cuts dropped. `current` names the served views whose state the
   * handoff left as it was when last materialized (BatchSwap.materializedCurrent; none when a cut
   * was raised, as realtime blocks may then have been dropped). A throw rolls the whole handoff back.
   */
  batchAppliedInTransaction?(connection: DuckDBConnection, manifest: BatchManifest, current: ReadonlySet<string>): Promise<void>;
  /** After the handoff of `manifest` committed (still serialised). A throw is logged, never retried. */
  batchAppliedCommitted?(manifest: BatchManifest): void;
}

/** What a handoff's swap (BatchHandoff) tells the listeners of the views it did not change. */
export interface BatchSwap {
  /**
   * Served views the swap left materialized as they are: their batch state kept as it was, or
   * served anew and materialized inside the swap after their state was final (a promoted definition).
   */
  readonly materializedCurrent: ReadonlySet<string>;
}

/**
 * What `SpeedLayer.changeViews` and a handoff's swap may do to realtime state, inside the speed
 * layer's serialised transaction (serving-layer/engine/live-views.ts uses it).
 */
export interface RealtimeViewsEditor {
  /** The rows of `relation` (with `_partition`/`_offset`) at or above the cuts, as a relation. */
  aboveCuts(relation: string): string;
  /** True when `events` misses consumed events (the tail limit), so it cannot fill a new view. */
  readonly eventsLagging: boolean;
  addView(bound: BoundView, options: { pending: boolean }): Promise<void>;
  fill(view: string, options: { pending: boolean }, events: string): Promise<void>;
  /**
   * Adds a fill built beside the micro-batches (`SpeedLayer.stageFills`) to its view's empty
   * table, with `relation`'s events committed since: what `fill(view, options,
   * aboveCuts(relation))` adds, without holding the micro-batches up for the whole relation.
   */
  fillStaged(staged: StagedFill, options: { pending: boolean }, relation: string): Promise<void>;
  removeView(view: string, options: { pending: boolean }): Promise<void>;
  promote(view: string): Promise<BoundView>;
  viewOf(view: string, options: { pending: boolean }): BoundView | undefined;
}

/**
 * A micro-batch decoded ahead of its commit (see `MicroBatcher.prepare`); its retries reuse it.
 * Replaced by a new decode when a batch handoff raised a cut over some of its records meanwhile.
 */
interface PreparedMicroBatch {
  /** Records of the micro-batch at or above the cuts when it was decoded. */
  recordCount: number;
  decoded: DecodedMicroBatch | undefined;
  decodeMs: number;
}

export interface SpeedLayerStatus {
  readonly state: 'created' | 'running' | 'stopped';
  readonly topic: string;
  /** The batch version whose cuts realtime state starts at; undefined before the first. */
  readonly batchVersion: number | undefined;
  readonly blockSize: number;
  readonly intervalMs: number;
  readonly partitions: readonly PartitionStatus[];
  readonly stalledPartitions: number;
  readonly microBatches: MicroBatchStats;
  /**
   * What this speed layer rejected since it started, like `lambda_speed_rejected_records_total`
   * (from the cut it started at, handed over or not). Not the `rejected` table's count: the
   * serving layer counts that (MasterDatasetViews.countRejected).
   */
  readonly rejected: { readonly table: string; readonly total: number; readonly byReason: Readonly<Record<RejectReason, number>> };
  readonly realtimeRows: Readonly<Record<string, number>>;
  /** The tail of `events` this speed layer keeps (EventsTail), and whether `events` lags the views. */
  readonly eventsTail: EventsTailStatus;
  readonly lastError: string | undefined;
}

/**
 * The speed layer (DESIGN.md): reads every partition of the topic from the batch cuts on, turns
 * each micro-batch into partial view state in the shared database, and hands realtime blocks
 * over to each new batch version in the transaction that swaps the batch tables in.
 *
 * Lifecycle: `create` (tables, no reading) → `start` → `stop`. All writes to realtime state run
 * one at a time on the layer's own connection: micro-batch commits, compactions, `applyBatch`.
 * Decoding runs ahead on the decoder's connections (MicroBatchDecoder): micro-batch n+1 is
 * staged and decoded while micro-batch n commits, so DuckDB works on two threads and the
 * JavaScript thread stays free to fetch. A decode touches no realtime state, so the commit alone
 * decides what counts; a handoff between the two makes the commit decode again.
 */
export class SpeedLayer {
  private readonly lock = new SerialLock();
  /** Fetched records, packed per fetch (one run each), waiting for and in micro-batches. */
  private readonly batcher: MicroBatcher<RecordRun, PreparedMicroBatch>;
  private readonly metrics: SpeedMetrics;
  private subscription: SourceSubscription | undefined;
  private readingStopped: Promise<void> | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private state: SpeedLayerStatus['state'] = 'created';
  private batchVersion: number | undefined;
  private lastError: string | undefined;
  private readonly listeners: RealtimeListener[] = [];
  /** Fills staged so far: their tables' names are numbered. */
  private stagedFills = 0;
  /** The cuts of the batch version realtime state starts at (empty before the first). */
  private cuts: ReadonlyMap<number, number>;

  private constructor(
    private readonly options: SpeedLayerOptions,
    private readonly connection: DuckDBConnection,
    private readonly realtime: RealtimeState,
    private readonly rejected: RejectedRecords,
    private readonly tail: EventsTail,
    private readonly decoder: MicroBatchDecoder,
    private readonly progress: PartitionProgress,
    private readonly logger: Logger,
  ) {
    const speed = options.loaded.config.speed;
    this.metrics = new SpeedMetrics(options.metrics, {
      partitions: () => this.progress.status(),
      realtimeRows: () => this.realtime.rowCounts(),
      eventsTail: () => this.tail.status(),
    });
    this.batcher = new MicroBatcher<RecordRun, PreparedMicroBatch>({
      intervalMs: speed.interval,
      maxItems: speed.maxBatchRecords,
      sizing: { size: runLength, split: splitRun },
      prepare: (records) => this.decodeMicroBatch(records),
      process: (records, prepared) => this.processMicroBatch(records, prepared),
      onError: (error, attempt) => {
        this.metrics.microBatchFailed();
        this.lastError = (error as Error).message;
        this.logger.error({ err: error, attempt }, 'micro-batch failed; retrying it');
      },
    });
    this.batchVersion = options.manifest?.version;
    this.cuts = options.manifest ? cutsOf(options.manifest) : new Map();
  }

  static async create(options: SpeedLayerOptions): Promise<SpeedLayer> {
    const { loaded, manifest } = options;
    const logger = (options.logger ?? createLogger('lambda')).child({ layer: 'speed' });
    if (manifest && manifest.topic !== options.source.topic) {
      throw new LambdaError(`batch version ${manifest.version} is for topic "${manifest.topic}", not "${options.source.topic}"`, {
        context: { topic: options.source.topic, version: manifest.version },
      });
    }
    const connection = await options.instance.connect();
    let decoder: MicroBatchDecoder | undefined;
    try {
      const views = await bindViews(loaded, connection);
      const speed = loaded.config.speed;
      const realtime = await RealtimeState.create(connection, views, { blockSize: speed.blockSize });
      const rejected = await RejectedRecords.create(connection, { topic: options.source.topic, maxKept: speed.maxRejectedKept, blockSize: speed.blockSize });
      const tail = await EventsTail.create(connection, loaded.schema, speed.maxEventsTail, speed.recentEvents);
      decoder = await MicroBatchDecoder.create(options.instance, loaded.schema);
      // An empty micro-batch through both stages: the first real one then does not pay for loading
      // DuckDB's JSON functions and binding the view SQL (about a second on a loaded machine).
      const empty = await decoder.decode([]);
      await realtime.addEvents(empty.relation);
      decoder.release(empty);
      const progress = new PartitionProgress({ stallTimeoutMs: options.stallTimeoutMs ?? Math.max(10_000, 10 * speed.interval) });
      if (manifest) progress.raiseCuts(cutsOf(manifest));
      if (manifest) tail.frontier.raiseCuts(cutsOf(manifest));
      return new SpeedLayer(options, connection, realtime, rejected, tail, decoder, progress, logger);
    } catch (error) {
      await decoder?.close();
      connection.closeSync();
      throw error;
    }
  }

  /** The views whose realtime state is served, as bound to the database. */
  get views(): readonly BoundView[] {
    return this.realtime.servedViews();
  }

  /**
   * Changes which views realtime state is kept for (a new definitions version), serialised with
   * the micro-batches, in one transaction on the speed layer's connection: `change` adds, fills,
   * drops or promotes views through the editor, and whatever else it runs on `connection` commits
   * or rolls back with it. Waits for the micro-batch in progress; the next one sees the new views.
   */
  async changeViews<T>(change: (connection: DuckDBConnection, editor: RealtimeViewsEditor) => Promise<T>): Promise<T> {
    return this.lock.runExclusive(async () => {
      if (this.state === 'stopped') throw new LambdaError('the speed layer is stopped');
      const restore = this.realtime.snapshot();
      try {
        return await inTransaction(this.connection, () => change(this.connection, this.editor()));
      } catch (error) {
        restore();
        await this.recount();
        throw error;
      }
    });
  }

  private editor(): RealtimeViewsEditor {
    const cuts = this.cuts;
    const realtime = this.realtime;
    return {
      aboveCuts: (relation) => aboveCutsRelationSql(relation, cuts),
      eventsLagging: this.tail.lagging(),
      addView: (bound, options) => realtime.addView(bound, options),
      fill: (view, options, events) => realtime.fill(view, options, events),
      fillStaged: async (staged, options, relation) => {
        const since = stagedSince(staged, cuts);
        const committedSince = await this.tail.aboveCuts(this.connection, relation, since);
        await realtime.fillStaged(staged, options, committedSince, cuts);
      },
      removeView: (view, options) => realtime.removeView(view, options),
      promote: (view) => realtime.promote(view),
      viewOf: (view, options) => realtime.viewOf(view, options),
    };
  }

  /**
   * The long part of filling new views (LiveViews.apply), beside the micro-batches: on a
   * connection of its own, in one transaction, `select` names the views (bound there), and each
   * one's partial state over `relation` at or above the cuts, as committed now, is built into a
   * table of its own. `relation` is the serving layer's `events` (the archive below the events
   * tail's splits, the tail above), read from the tail alone where that holds the same rows
   * (EventsTail.aboveCuts); or the tail itself. `changeViews`' editor then adds it with
   * `fillStaged`, in the serialised transaction, with only what was committed since. Nothing is
   * staged when `relation` lags (`changeViews` says why it cannot fill). Drop what it returns
   * with `dropStaged`, used or not.
   */
  async stageFills(select: (connection: DuckDBConnection) => Promise<readonly BoundView[]>, relation: string, built?: () => void): Promise<StagedFill[]> {
    if (this.state === 'stopped' || this.tail.lagging()) return [];
    const cuts = this.cuts;
    const connection = await this.options.instance.connect();
    try {
      return await inTransaction(connection, async () => {
        const staged: StagedFill[] = [];
        const views = await select(connection);
        if (views.length === 0) return staged;
        const events = await this.tail.aboveCuts(connection, relation, cuts);
        const tables = views.map((bound) => ({ bound, table: `${STAGED_FILL_TABLE_PREFIX}${++this.stagedFills}` }));
        for (const { bound, table } of tables) await this.realtime.stageRows(connection, bound, table, events);
        built?.();
        for (const { bound, table } of tables) staged.push(await this.realtime.staged(connection, bound, table, events, cuts));
        return staged;
      });
    } finally {
      connection.closeSync();
    }
  }

  /** Drops the tables of fills `stageFills` built (used or not), on a connection of their own. */
  async dropStaged(staged: readonly StagedFill[]): Promise<void> {
    if (staged.length === 0) return;
    const connection = await this.options.instance.connect();
    try {
      for (const fill of staged) await connection.run(`DROP TABLE IF EXISTS ${quoteIdent(fill.table)}`);
    } finally {
      connection.closeSync();
    }
  }

  /** Adds a listener to the commit points; add them before `start`. */
  addListener(listener: RealtimeListener): void {
    this.listeners.push(listener);
  }

  get topic(): string {
    return this.options.source.topic;
  }

  /** The tail of `events` above the archive, for the serving layer's `events` view. */
  get eventsTail(): EventsTailSource {
    return this.tail;
  }

  /** Starts reading. Resolves once subscribed (the consumer group may still be forming). */
  async start(): Promise<void> {
    if (this.state !== 'created') throw new LambdaError(`the speed layer is ${this.state}; create a new one to start again`);
    this.state = 'running';
    this.batcher.start();
    const groupId = this.options.groupId ?? `lambda-speed-${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      this.subscription = await this.options.source.subscribe({
        groupId,
        startOffset: (partition) => this.progress.startOffset(partition),
        onBatch: (batch) => this.onBatch(batch),
        onGap: (gap) => this.onGap(gap),
      });
    } catch (error) {
      await this.stop();
      throw error;
    }
    const refreshMs = this.options.highWatermarkRefreshMs ?? 5_000;
    this.refreshTimer = setInterval(() => void this.refreshHighWatermarks(), refreshMs);
    this.refreshTimer.unref();
    void this.refreshHighWatermarks();
    this.logger.info({ topic: this.topic, groupId, batchVersion: this.batchVersion }, 'speed layer started');
  }

  /** Stops reading and processing; realtime tables stay as they are (and stop changing). */
  /**
   * Stops consuming: the micro-batcher, then the source (the first step of stop, which may be
   * taken alone before it, e.g. to stop every consumer of a node at once).
   */
  stopReading(): Promise<void> {
    this.readingStopped ??= (async () => {
      // The batcher first: it releases a source callback waiting for room, so the source can stop.
      await this.batcher.stop();
      await this.subscription?.stop().catch((error: unknown) => this.logger.warn({ err: error }, 'stopping the source failed'));
    })();
    return this.readingStopped;
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    clearInterval(this.refreshTimer);
    if (wasRunning) await this.stopReading();
    await this.lock.runExclusive(async () => this.connection.closeSync());
    await this.decoder.close();
  }

  /**
   * The speed layer's half of the batch handoff (serving-layer/engine/batch-handoff.ts): in ONE
   * transaction on the shared database, runs `swapBatchTables` (which replaces the `batch__<view>`
   * tables; it must not commit), deletes the realtime blocks and rejected records below the
   * version's cuts and runs the listeners' `batchAppliedInTransaction` (told which views are still
   * current, when no cut moved and `swapBatchTables` says so). Waits for the micro-batch
   * in progress; records below the new cuts that arrive later are dropped. Rolled back entirely
   * if anything throws; `committed` runs after the commit, before the next micro-batch.
   */
  async applyBatch(
    manifest: BatchManifest,
    swapBatchTables: (connection: DuckDBConnection, editor: RealtimeViewsEditor) => Promise<BatchSwap | void>,
    committed?: () => void,
  ): Promise<void> {
    checkHandoff(manifest, { topic: this.topic, blockSize: this.options.loaded.config.speed.blockSize, cutExclusive: (p) => this.progress.cutExclusive(p) });
    const cuts = cutsOf(manifest);
    await this.lock.runExclusive(async () => {
      if (this.state === 'stopped') throw new LambdaError('the speed layer is stopped', { context: { version: manifest.version } });
      const restore = this.realtime.snapshot();
      try {
        await inTransaction(this.connection, async () => {
          const swap = await swapBatchTables(this.connection, this.editor());
          // Nothing below the current cuts is ever held (records and fills start at them), so only
          // the cuts this version raises drop anything; a version at the same cuts rewrites nothing.
          const raised = new Map([...cuts].filter(([partition, cut]) => cut > (this.cuts.get(partition) ?? 0)));
          await this.realtime.dropBelow(raised);
          await this.rejected.dropBelow(raised);
          const current = raised.size === 0 && swap ? swap.materializedCurrent : new Set<string>();
          for (const l of this.listeners) await l.batchAppliedInTransaction?.(this.connection, manifest, current);
        });
      } catch (error) {
        restore();
        await this.recount();
        throw error;
      }
      this.progress.raiseCuts(cuts);
      this.tail.frontier.raiseCuts(cuts);
      this.cuts = cuts;
      // Before the next micro-batch: `events` splitting at the new cuts is what it continues.
      committed?.();
      this.batchVersion = manifest.version;
      for (const l of this.listeners) {
        try {
          l.batchAppliedCommitted?.(manifest);
        } catch (error) {
          this.logger.warn({ err: error }, 'a handoff listener failed after the commit');
        }
      }
      this.logger.info({ version: manifest.version }, 'batch version applied to realtime state');
    });
  }

  status(): SpeedLayerStatus {
    const partitions = this.progress.status();
    const byReason = Object.fromEntries(this.rejected.countsByReason()) as Record<RejectReason, number>;
    return {
      state: this.state,
      topic: this.topic,
      batchVersion: this.batchVersion,
      blockSize: this.options.loaded.config.speed.blockSize,
      intervalMs: this.options.loaded.config.speed.interval,
      partitions,
      stalledPartitions: partitions.filter((p) => p.stalled).length,
      microBatches: this.metrics.microBatchStats(),
      rejected: { table: REJECTED_REALTIME_TABLE, total: Object.values(byReason).reduce((a, b) => a + b, 0), byReason },
      realtimeRows: Object.fromEntries(this.realtime.rowCounts()),
      eventsTail: this.tail.status(),
      lastError: this.lastError,
    };
  }

  /** The fetched records wait for their micro-batch as they came, packed (a run over them). */
  private async onBatch(batch: SourceBatch): Promise<void> {
    const fresh = this.progress.accept(batch);
    if (fresh) await this.batcher.add([fresh]);
  }

  private onGap(gap: SourceGap): void {
    this.metrics.offsetsSkipped(gap.toOffsetExclusive - gap.fromOffset);
    this.logger.warn({ ...gap }, 'offsets were deleted from the log before the speed layer read them');
  }

  /**
   * The first stage of a micro-batch, on the decoder's connection while the writer may still be
   * committing the micro-batch before: nothing here touches realtime state.
   */
  private async decodeMicroBatch(received: RecordRun[]): Promise<PreparedMicroBatch> {
    const startedMs = performance.now();
    const runs = this.progress.aboveCuts(received);
    const recordCount = totalLength(runs);
    const decoded = recordCount > 0 ? await this.decoder.decode(runs) : undefined;
    return { recordCount, decoded, decodeMs: performance.now() - startedMs };
  }

  /** `prepared`, decoded again first if a batch handoff since raised a cut over some of its records. */
  private async decodedAboveCuts(received: RecordRun[], prepared: PreparedMicroBatch): Promise<DecodedMicroBatch | undefined> {
    const runs = this.progress.aboveCuts(received);
    const recordCount = totalLength(runs);
    if (recordCount !== prepared.recordCount) {
      if (prepared.decoded) this.decoder.release(prepared.decoded);
      prepared.decoded = undefined;
      prepared.recordCount = -1; // until decoded again: a retry must not take it for decoded
      if (recordCount > 0) prepared.decoded = await this.decoder.decode(runs);
      prepared.recordCount = recordCount;
    }
    return prepared.decoded;
  }

  /** Commits one decoded micro-batch; throws (and is retried as is) if nothing was committed. */
  private async processMicroBatch(received: RecordRun[], prepared: PreparedMicroBatch): Promise<void> {
    await this.lock.runExclusive(async () => {
      if (this.state === 'stopped') return;
      const startedMs = performance.now();
      const decoded = await this.decodedAboveCuts(received, prepared);
      if (this.tail.pruneDue()) await this.pruneTail();
      const decodedMs = performance.now();
      const withEvents = new Set(decoded?.newestEventMs.keys());
      const admitted = this.tail.frontier.admitted(withEvents, decoded?.goodCount ?? 0, this.tail.tailRows);
      if (decoded) {
        try {
          await inTransaction(this.connection, async () => {
            if (decoded.goodCount > 0) await this.realtime.addEvents(decoded.relation);
            if (decoded.goodCount > 0) await this.tail.append(decoded.relation, admitted, admitted.size === withEvents.size);
            await this.rejected.add(decoded.rejected);
            const events = decoded.goodCount > 0 ? decoded.relation : undefined;
            for (const l of this.listeners) await l.microBatchInTransaction?.(this.connection, events);
          });
        } catch (error) {
          await this.recount();
          throw error;
        }
      }
      // Committed: from here on nothing may throw, or the batcher would process it again.
      const committedMs = performance.now();
      if (decoded) this.decoder.release(decoded);
      const next = nextOffsets(received);
      this.progress.commit(next, decoded?.newestEventMs ?? new Map());
      this.tail.frontier.committed(next, withEvents, admitted);
      this.rejected.countCommitted(decoded?.rejected ?? []);
      this.metrics.microBatchCommitted(prepared.decodeMs + committedMs - startedMs, decoded?.goodCount ?? 0, decoded?.rejected ?? []);
      this.lastError = undefined;
      for (const l of this.listeners) {
        try {
          await l.microBatchCommitted?.(this.connection);
        } catch (error) {
          this.logger.warn({ err: error }, 'a micro-batch listener failed after the commit');
        }
      }
      const compacted = await this.compact();
      this.logger.debug(
        {
          records: totalLength(received),
          good: decoded?.goodCount ?? 0,
          rejected: decoded?.rejected.length ?? 0,
          slowPath: decoded?.slowPathCount ?? 0,
          decodeMs: Math.round(prepared.decodeMs + decodedMs - startedMs),
          commitMs: Math.round(committedMs - decodedMs),
          compacted,
          compactMs: Math.round(performance.now() - committedMs),
        },
        'micro-batch committed',
      );
    });
  }

  /** Compacts what grew enough; a failure is logged, never thrown (the commit stands). */
  private async compact(): Promise<string[]> {
    try {
      return await this.realtime.compact();
    } catch (error) {
      this.logger.warn({ err: error }, 'compacting realtime state failed');
      return [];
    }
  }

  /** Drops tail rows `events` no longer reads; a failure is logged (they are filtered out anyway). */
  private async pruneTail(): Promise<void> {
    try {
      await this.tail.prune();
    } catch (error) {
      this.logger.warn({ err: error }, 'pruning the events tail failed');
    }
  }

  private async recount(): Promise<void> {
    try {
      await this.realtime.recount();
      await this.rejected.recount();
      await this.tail.recount();
    } catch (error) {
      this.logger.warn({ err: error }, 'cannot recount realtime rows');
    }
  }

  private async refreshHighWatermarks(): Promise<void> {
    try {
      this.progress.observeHighWatermarks(await this.options.source.highWatermarks());
    } catch (error) {
      this.logger.debug({ err: error }, 'cannot read the log end offsets');
    }
  }
}
