import type { Logger } from '../../core/observability/logger.ts';
import type { AlertMetrics } from './alert-metrics.ts';
import type { AlertRecord } from './alert-record.ts';
import type { AlertSink } from './alert-sink.ts';
import type { AlertStore } from './alert-store.ts';
import { DEFAULT_BACKOFF, type BackoffOptions } from './backoff.ts';
import type { DeliveryWatermarks } from './delivery-watermarks.ts';
import { SinkLane, type SinkLaneStatus } from './sink-lane.ts';

/** A sink and the alerts that notify it. */
export interface SinkRoute {
  readonly sink: AlertSink;
  readonly alerts: readonly string[];
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
  private readonly lanes: SinkLane[];
  private owner = false;
  private ownership: Promise<void> = Promise.resolve();

  constructor(private readonly options: NotificationOutboxOptions) {
    this.lanes = options.routes.map(
      (route) =>
        new SinkLane({
          sink: route.sink,
          alerts: route.alerts,
          store: options.store,
          watermarks: options.watermarks,
          backoff: options.backoff ?? DEFAULT_BACKOFF,
          takeoverSkewMs: options.takeoverSkewMs ?? 5_000,
          refusalAttempts: options.refusalAttempts ?? 5,
          logger: options.logger,
          ...(options.metrics ? { metrics: options.metrics } : {}),
        }),
    );
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
    await Promise.allSettled(this.options.routes.map((r) => r.sink.close()));
  }
}
