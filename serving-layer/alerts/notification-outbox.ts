import type { Logger } from '../../core/observability/logger.ts';
import type { AlertMetrics } from './alert-metrics.ts';
import type { AlertRecord } from './alert-record.ts';
import type { AlertSink } from './alert-sink.ts';
import type { AlertStore } from './alert-store.ts';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import type { DeliveryPosition, DeliveryWatermarks } from './delivery-watermarks.ts';
import { SinkLane, type SinkLaneStatus } from './sink-lane.ts';

/** A sink and the alerts that notify it. */
export interface SinkRoute {
  readonly sink: AlertSink;
  readonly alerts: readonly string[];
}

/** A route as a new rule set describes it: the sink is made only when no lane has it yet. */
export interface PlannedRoute {
  readonly sinkId: string;
  readonly alerts: readonly string[];
  createSink(): AlertSink;
}

export interface NotificationOutboxOptions {
  readonly store: AlertStore;
  readonly routes: readonly SinkRoute[];
  /** The store itself on a single node; ZooKeeper in a cluster. */
  readonly watermarks: DeliveryWatermarks;
  readonly backoff?: BackoffOptions;
  /** See SinkLaneOptions.takeoverSkewMs (default 5 s). */
  readonly takeoverSkewMs?: number;
  /** See SinkLaneOptions.refusalAttempts (default 5). */
  readonly refusalAttempts?: number;
  readonly logger: Logger;
  readonly metrics?: AlertMetrics;
}

/**
 * Hands recorded notifications to their sinks, one lane per sink, without ever making the
 * evaluator wait: `offer` only queues. Every node records the same transitions in its own store;
 * only the notifier (`setOwner(true)`) delivers. A node that becomes the notifier resumes each
 * sink from the delivery position the previous one left, so across a takeover a notification may
 * be delivered twice (at least once) but none is skipped.
 */
export class NotificationOutbox {
  private lanes: SinkLane[];
  private owner = false;
  private ownership: Promise<void> = Promise.resolve();

  constructor(private readonly options: NotificationOutboxOptions) {
    this.lanes = options.routes.map((route) => this.lane(route));
  }

  private lane(route: SinkRoute, startAfter?: DeliveryPosition): SinkLane {
    const { options } = this;
    return new SinkLane({
      sink: route.sink,
      alerts: route.alerts,
      store: options.store,
      watermarks: options.watermarks,
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      takeoverSkewMs: options.takeoverSkewMs ?? 5_000,
      refusalAttempts: options.refusalAttempts ?? 5,
      logger: options.logger,
      ...(startAfter ? { startAfter } : {}),
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
  }

  /** The sink ids with a lane (a route now, or notifications of a removed rule still to deliver). */
  get sinkIds(): string[] {
    return this.lanes.map((lane) => lane.sinkId);
  }

  /**
   * Follows the rules' new `notify` entries, in the order calls are made (with ownership changes).
   * A sink still routed keeps its lane (queue, position) with the alerts routed to it now; a new
   * sink gets a lane that starts after the newest record (not with its alerts' history). The
   * `removed` rules stay routed to the sinks they had, so that the resolve notifications that end
   * their instances (recorded after this call) reach those who were paged; a lane left with no
   * alert is closed once it has nothing pending (else at the next change, or at close).
   */
  setRoutes(routes: readonly PlannedRoute[], removed: ReadonlySet<string>): Promise<void> {
    this.ownership = this.ownership.then(async () => {
      const byId = new Map(routes.map((r) => [r.sinkId, r]));
      const lanes: SinkLane[] = [];
      const closing: SinkLane[] = [];
      for (const lane of this.lanes) {
        const kept = [...lane.alertNames].filter((a) => removed.has(a));
        lane.setAlerts([...(byId.get(lane.sinkId)?.alerts ?? []), ...kept]);
        if (lane.alertNames.size === 0 && lane.status().pending === 0) closing.push(lane);
        else lanes.push(lane);
      }
      for (const route of routes) {
        if (this.lanes.some((lane) => lane.sinkId === route.sinkId)) continue;
        const lane = this.lane({ sink: route.createSink(), alerts: route.alerts }, this.options.store.newestPosition);
        lanes.push(lane);
        if (this.owner) lane.start();
      }
      this.lanes = lanes;
      await Promise.all(closing.map((lane) => lane.stop()));
      await Promise.allSettled(closing.map((lane) => lane.close()));
    });
    return this.ownership;
  }

  get isOwner(): boolean {
    return this.owner;
  }

  /** Starts or stops delivery; calls are applied in order, each after the previous one finished. */
  setOwner(owner: boolean): Promise<void> {
    this.ownership = this.ownership.then(async () => {
      if (owner === this.owner) return;
      this.owner = owner;
      this.options.metrics?.notifier.set(owner ? 1 : 0);
      this.options.logger.info({ sinks: this.lanes.length }, owner ? 'delivering alert notifications' : 'no longer delivering alert notifications');
      if (owner) for (const lane of this.lanes) lane.start();
      else await Promise.all(this.lanes.map((lane) => lane.stop()));
    });
    return this.ownership;
  }

  /** Records just appended to the store; returns at once. */
  offer(records: readonly AlertRecord[]): void {
    if (records.length === 0) return;
    for (const lane of this.lanes) lane.offer(records);
  }

  /** The sequence number after which some sink may still wait for a notification (for pruning). */
  async undeliveredAfterSeq(): Promise<number> {
    let afterSeq = this.options.store.lastSeq;
    for (const lane of this.lanes) afterSeq = Math.min(afterSeq, await lane.undeliveredAfterSeq());
    return afterSeq;
  }

  status(): SinkLaneStatus[] {
    return this.lanes.map((lane) => lane.status());
  }

  /** Stops delivering and closes the sinks; the store stays open (its owner closes it). */
  async close(): Promise<void> {
    await this.setOwner(false);
    await this.ownership;
    await Promise.allSettled(this.lanes.map((lane) => lane.close()));
  }
}
