import type { Logger } from '../../core/observability/logger.ts';
import { retry } from '../../core/retry/retry.ts';
import type { AlertMetrics } from './alert-metrics.ts';
import { toPayload, type AlertRecord } from './alert-record.ts';
import type { AlertSink } from './alert-sink.ts';
import type { AlertStore } from './alert-store.ts';
import { redeliveryBackoff, type BackoffOptions } from './backoff.ts';
import type { DeliveryPosition, DeliveryWatermarks } from './delivery-watermarks.ts';
import { SinkError } from './sink-error.ts';

export interface SinkLaneOptions {
  readonly sink: AlertSink;
  /** The alerts whose notifications go to this sink. */
  readonly alerts: readonly string[];
  readonly store: AlertStore;
  readonly watermarks: DeliveryWatermarks;
  readonly backoff: BackoffOptions;
  /** How far before another node's position to resume when its notification is not found here. */
  readonly takeoverSkewMs: number;
  /** Attempts a refused notification gets (backoff between them) before it is parked. */
  readonly refusalAttempts: number;
  /**
   * Notifications held in memory at most (default 10,000). While the sink is down the rest stay
   * in the store only and are read back from it as the held ones are delivered.
   */
  readonly maxPendingInMemory?: number;
  /**
   * Where a sink with no delivery position starts (default: the store's newest record when it was
   * opened). A sink added while running starts at what is recorded from then on, not with the
   * history its alerts made before they notified it.
   */
  readonly startAfter?: DeliveryPosition;
  readonly logger: Logger;
  readonly metrics?: AlertMetrics;
}

/** A notification the sink kept refusing: skipped, and listed so that someone looks at it. */
export interface ParkedNotification {
  readonly id: string;
  readonly alert: string;
  readonly error: string;
  readonly parkedAtMs: number;
}

const PARKED_LISTED = 100;

export interface SinkLaneStatus {
  readonly sink: string;
  readonly description: string;
  readonly delivering: boolean;
  readonly pending: number;
  readonly lastDelivered: { readonly id: string; readonly atMs: number; readonly deliveredAtMs: number } | null;
  readonly lastError: string | null;
  /** Notifications parked since start (refused `refusalAttempts` times), and the newest of them. */
  readonly parked: number;
  readonly recentlyParked: readonly ParkedNotification[];
}

/**
 * Delivers one sink's notifications, one at a time and in store order, while this process is the
 * notifier. On start it resumes after the sink's delivery position (possibly another node's),
 * reading the backlog from the store; new notifications are offered as they are recorded. A
 * failed delivery is retried with backoff until it succeeds or the lane is stopped, so a sink
 * that is down holds its notifications back but loses none. The position is written after each
 * delivery (coalesced: at most one write in flight), so a takeover repeats at most what was
 * delivered since the last write. At most `maxPendingInMemory` notifications are held: past that,
 * newer ones are dropped from memory (the store keeps them) and reloaded in store order once the
 * held ones are delivered, so a sink down for days costs no more memory than one down for a minute.
 */
export class SinkLane {
  private alerts: ReadonlySet<string>;
  private run: { readonly controller: AbortController; readonly done: Promise<void> } | undefined;
  private queue: AlertRecord[] = [];
  private loading = false;
  private buffered: AlertRecord[] = [];
  /** Set while notifications after this seq are in the store only (the queue was full). */
  private spilledAfterSeq: number | undefined;
  private wake: (() => void) | undefined;
  private latest: DeliveryPosition | undefined;
  private written: DeliveryPosition | undefined;
  private writing: Promise<void> | undefined;
  private lastDelivered: SinkLaneStatus['lastDelivered'] = null;
  private lastError: string | null = null;
  private parkedCount = 0;
  private readonly parked: ParkedNotification[] = [];

  constructor(private readonly options: SinkLaneOptions) {
    this.alerts = new Set(options.alerts);
  }

  get sinkId(): string {
    return this.options.sink.id;
  }

  /** The alerts routed here now (rules' `notify` changed); takes effect with the next offer or load. */
  setAlerts(alerts: Iterable<string>): void {
    this.alerts = new Set(alerts);
  }

  get alertNames(): ReadonlySet<string> {
    return this.alerts;
  }

  start(): void {
    if (this.run) return;
    const controller = new AbortController();
    this.queue = [];
    this.buffered = [];
    this.spilledAfterSeq = undefined;
    this.loading = true;
    this.run = { controller, done: this.loop(controller.signal) };
  }

  /** Stops delivering (abandoning an attempt in flight) and writes the last position it can. */
  async stop(): Promise<void> {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    run.controller.abort();
    this.wake?.();
    await run.done;
    this.queue = [];
    this.buffered = [];
    this.updatePendingGauge();
    await this.persistPosition();
  }

  /** Closes the sink (after `stop`). */
  close(): Promise<void> {
    return this.options.sink.close();
  }

  /** Newly recorded records (any alert, any kind); keeps this sink's notifications. */
  offer(records: readonly AlertRecord[]): void {
    if (!this.run) return;
    const mine = records.filter((r) => r.notify && this.alerts.has(r.alert));
    if (mine.length === 0) return;
    if (this.loading) this.buffered.push(...mine);
    else if (this.spilledAfterSeq === undefined) this.hold(mine);
    // else: spilled, and these have later seqs than what is held; the store keeps them for the refill.
    this.updatePendingGauge();
    this.wake?.();
  }

  /**
   * The sequence number in this store after which this sink's notifications may still be
   * undelivered: from the sink's position (this node's, or another notifier's in a cluster).
   */
  async undeliveredAfterSeq(): Promise<number> {
    const { store, watermarks, sink, takeoverSkewMs } = this.options;
    const position = (await watermarks.read(sink.id)) ?? this.options.startAfter ?? store.openedAt;
    return store.resumeAfterSeq(position, [...this.alerts], takeoverSkewMs);
  }

  status(): SinkLaneStatus {
    return {
      sink: this.options.sink.id,
      description: this.options.sink.description,
      delivering: this.run !== undefined,
      pending: this.queue.length + this.buffered.length,
      lastDelivered: this.lastDelivered,
      lastError: this.lastError,
      parked: this.parkedCount,
      recentlyParked: [...this.parked],
    };
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const upToSeq = this.options.store.lastSeq; // read before any await: later appends arrive by offer()
    if (!(await this.loadBacklog(upToSeq, signal))) return;
    while (!signal.aborted) {
      const next = this.queue[0];
      if (!next && this.spilledAfterSeq !== undefined) {
        if (!(await this.refill(this.spilledAfterSeq, signal))) return;
        continue;
      }
      if (!next) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      if (!(await this.deliver(next, signal))) return;
      this.delivered(next);
    }
  }

  /**
   * Delivers one notification, retrying every failure with backoff, except a refusal repeated
   * `refusalAttempts` times, which parks it. False when stopped first.
   */
  private async deliver(next: AlertRecord, signal: AbortSignal): Promise<boolean> {
    const { sink, logger, metrics } = this.options;
    let refusals = 0;
    try {
      await retry(
        async ({ attempt }) => {
          try {
            await sink.deliver(toPayload(next), signal);
          } catch (error) {
            if (!signal.aborted) {
              this.lastError = (error as Error).message;
              metrics?.deliveryFailures.inc({ sink: sink.id });
            }
            throw error;
          }
          if (attempt > 1) logger.info({ sink: sink.description, attempts: attempt }, 'alert sink is delivering again');
        },
        {
          ...redeliveryBackoff(this.options.backoff),
          retries: Infinity,
          signal,
          isRetriable: (error) => !(error instanceof SinkError && !error.retriable && ++refusals >= this.options.refusalAttempts),
          onRetry: (error, attempt) => {
            if (attempt === 1) logger.warn({ err: error, notification: next.id }, 'alert sink failed; retrying with backoff');
          },
        },
      );
    } catch (error) {
      if (signal.aborted) return false;
      this.park(next, error as SinkError);
      return true;
    }
    this.lastError = null;
    return true;
  }

  /** Fills the queue with what the sink has not acknowledged; false if stopped first. */
  private async loadBacklog(upToSeq: number, signal: AbortSignal): Promise<boolean> {
    const { store, watermarks, sink, takeoverSkewMs } = this.options;
    const alerts = [...this.alerts];
    const load = async (): Promise<void> => {
      let position = await watermarks.read(sink.id);
      if (!position) {
        // A sink never delivered to starts with what is recorded from now on, not with history.
        position = this.options.startAfter ?? store.openedAt;
        await watermarks.write(sink.id, position);
      }
      const afterSeq = await store.resumeAfterSeq(position, alerts, takeoverSkewMs);
      const backlog = await store.notificationsBetween(afterSeq, upToSeq, alerts);
      if (signal.aborted) return;
      this.takeLoaded(afterSeq, backlog);
    };
    return this.retryingLoad(load, signal);
  }

  /** Reads the next notifications the queue had no room for from the store; false if stopped first. */
  private refill(afterSeq: number, signal: AbortSignal): Promise<boolean> {
    const { store } = this.options;
    this.loading = true; // records offered meanwhile are buffered, not dropped: they may be past `upToSeq`
    const load = async (): Promise<void> => {
      const upToSeq = store.lastSeq;
      const loaded = await store.notificationsBetween(afterSeq, upToSeq, [...this.alerts], this.maxPending);
      if (signal.aborted) return;
      this.spilledAfterSeq = undefined;
      // A full page may have more behind it in the store: keep only what was offered before it.
      const more = loaded.length >= this.maxPending;
      if (more) this.buffered = [];
      this.takeLoaded(afterSeq, loaded);
      if (more) this.spilledAfterSeq = loaded.at(-1)!.seq;
    };
    return this.retryingLoad(load, signal);
  }

  private get maxPending(): number {
    return this.options.maxPendingInMemory ?? 10_000;
  }

  /** Queues `loaded` and what was offered meanwhile, in seq order, each once, up to the bound. */
  private takeLoaded(afterSeq: number, loaded: readonly AlertRecord[]): void {
    const bySeq = new Map([...loaded, ...this.buffered].filter((r) => r.seq > afterSeq).map((r) => [r.seq, r]));
    this.queue = [];
    this.buffered = [];
    this.loading = false;
    this.hold([...bySeq.values()].sort((a, b) => a.seq - b.seq));
    this.updatePendingGauge();
  }

  /** Appends to the queue up to the bound; past it, notes where the store must be read again. */
  private hold(records: readonly AlertRecord[]): void {
    const room = this.maxPending - this.queue.length;
    if (records.length <= room) {
      this.queue.push(...records);
      return;
    }
    this.queue.push(...records.slice(0, Math.max(0, room)));
    this.spilledAfterSeq = this.queue.at(-1)?.seq ?? records[0]!.seq - 1;
    this.options.logger.debug({ sink: this.options.sink.description, held: this.queue.length }, 'alert sink lane full; newer notifications wait in the store');
  }

  private retryingLoad(load: () => Promise<void>, signal: AbortSignal): Promise<boolean> {
    const { sink } = this.options;
    const retries = {
      ...redeliveryBackoff(this.options.backoff),
      retries: Infinity,
      signal,
      isRetriable: () => true,
      onRetry: (error: unknown) => {
        this.lastError = (error as Error).message;
        this.options.logger.warn({ err: error, sink: sink.description }, 'cannot load the alert outbox; retrying');
      },
    };
    // Only a stop ends the retries.
    return retry(load, retries).then(() => !signal.aborted, () => false);
  }

  private park(record: AlertRecord, error: SinkError): void {
    const sink = this.options.sink.description;
    this.options.logger.error(
      { err: error, sink, notification: record.id, alert: record.alert, attempts: this.options.refusalAttempts },
      `alert sink refused a notification ${this.options.refusalAttempts} times; parked it and moving on (it stays in alert_history; fix the receiver, e.g. its URL, auth or payload limits)`,
    );
    this.options.metrics?.dropped.inc({ sink: this.options.sink.id });
    this.parkedCount++;
    this.parked.push({ id: record.id, alert: record.alert, error: error.message, parkedAtMs: Date.now() });
    if (this.parked.length > PARKED_LISTED) this.parked.shift();
  }

  private delivered(record: AlertRecord): void {
    this.queue.shift();
    this.updatePendingGauge();
    this.lastDelivered = { id: record.id, atMs: record.atMs, deliveredAtMs: Date.now() };
    this.options.metrics?.delivered.inc({ sink: this.options.sink.id });
    this.latest = { storeId: this.options.store.storeId, seq: record.seq, id: record.id, atMs: record.atMs };
    void this.persistPosition();
  }

  private persistPosition(): Promise<void> {
    this.writing ??= (async () => {
      try {
        while (this.latest && this.latest !== this.written) {
          const position = this.latest;
          await this.options.watermarks.write(this.options.sink.id, position);
          this.written = position;
        }
      } catch (error) {
        this.options.logger.warn({ err: error, sink: this.options.sink.description }, 'cannot record the alert delivery position');
      } finally {
        this.writing = undefined;
      }
    })();
    return this.writing;
  }

  private updatePendingGauge(): void {
    this.options.metrics?.pending.set({ sink: this.options.sink.id }, this.queue.length + this.buffered.length);
  }
}
