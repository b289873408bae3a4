import { Kafka, logLevel, type Consumer, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from '../observability/logger.ts';
import { retry } from '../retry/retry.ts';
import { startFetchThread } from './kafka-fetch-thread.ts';
import { packFrom } from './packed-records.ts';
import type { RecordSource, SourceSubscription, SubscribeOptions } from './record-source.ts';

export interface KafkaSourceSettings {
  readonly brokers: readonly string[];
  readonly topic: string;
  readonly clientId?: string;
  readonly ssl?: boolean;
  readonly sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /**
   * Run each subscription's consumer on a thread of its own (default true), which hands the
   * fetched records over packed (see kafka-fetch-thread.ts): the Kafka client's decoding of
   * record batches is then off the thread that runs DuckDB, queries and alerts.
   */
  readonly fetchThread?: boolean;
}

export interface KafkaSubscribeTuning {
  /** Partitions whose batches are handled at the same time (each partition stays sequential). */
  readonly partitionsConsumedConcurrently?: number;
  readonly sessionTimeoutMs?: number;
  readonly maxBytesPerPartition?: number;
  /**
   * How long a fetch may wait for data (kafkajs' maxWaitTimeInMs, default 250 ms). The broker can
   * hold an empty fetch for the whole wait even when data arrives meanwhile, so this bounds how
   * stale realtime views get; kafkajs' own default of 5 s made views ~5 s behind.
   */
  readonly maxWaitTimeMs?: number;
}

const KAFKAJS_LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** kafkajs' log lines, forwarded to the process logger (kafkajs' own INFO is chatty: debug). */
function kafkaLogCreator(logger: Logger) {
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      const target = KAFKAJS_LEVELS[level] ?? 'info';
      logger[target === 'info' ? 'debug' : target]({ kafka: extra }, message);
    };
}

/**
 * The Kafka topic as a RecordSource, on kafkajs. kafkajs has no manual partition assignment, so a
 * subscriber joins a consumer group and, on every assignment, seeks each newly assigned partition
 * to `startOffset(partition)`; partitions it keeps across a rebalance continue where they were.
 * Offsets are never committed: positions come from the caller's durable state (manifest cuts,
 * archived files). A fetch can race the seek, so records below a partition's position are
 * dropped here: a subscriber never sees an offset twice or below its start.
 */
export class KafkaRecordSource implements RecordSource {
  readonly topic: string;
  private readonly kafka: Kafka;
  private readonly logger: Logger;

  constructor(
    private readonly settings: KafkaSourceSettings,
    logger: Logger,
  ) {
    this.topic = settings.topic;
    this.logger = logger;
    const config: KafkaConfig = {
      clientId: settings.clientId ?? 'lambda-analytics',
      brokers: [...settings.brokers],
      ssl: settings.ssl ?? false,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(logger),
      retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2_000 },
      ...(settings.sasl ? { sasl: settings.sasl as KafkaConfig['sasl'] } : {}),
    };
    this.kafka = new Kafka(config);
  }

  /** The kafkajs client, for producers (tests, benchmarks, the alert sink). */
  get client(): Kafka {
    return this.kafka;
  }

  async partitionCount(): Promise<number> {
    return (await this.highWatermarks()).size;
  }

  async highWatermarks(): Promise<Map<number, number>> {
    // Few retries: callers ask again on their own schedule (a periodic refresh, the partition
    // rebalance), and one call retrying for seconds outlived the stop of a node whose broker was gone.
    const admin = this.kafka.admin({ retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 } });
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(this.topic);
      return new Map(offsets.map((o) => [o.partition, Number(o.high)]));
    } finally {
      await admin.disconnect();
    }
  }

  async subscribe(options: SubscribeOptions, tuning: KafkaSubscribeTuning = {}): Promise<SourceSubscription> {
    if (this.settings.fetchThread ?? true) return startFetchThread({ ...this.settings, fetchThread: false }, options, tuning, this.logger);
    return this.subscribeHere(options, tuning);
  }

  /** `subscribe` with the consumer on this thread; `onAssignment` hears every assignment. */
  async subscribeHere(
    options: SubscribeOptions,
    tuning: KafkaSubscribeTuning,
    onAssignment?: (partitions: readonly number[]) => void,
  ): Promise<RepositionableSubscription> {
    const consumer = this.kafka.consumer({
      groupId: options.groupId,
      allowAutoTopicCreation: false,
      sessionTimeout: tuning.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: Math.floor((tuning.sessionTimeoutMs ?? 10_000) / 5),
      maxBytesPerPartition: tuning.maxBytesPerPartition ?? 4 * 1024 * 1024,
      maxWaitTimeInMs: tuning.maxWaitTimeMs ?? 250,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2_000 },
    });
    const subscription = new KafkaSubscription(consumer, this.topic, options, this.logger, Math.floor((tuning.sessionTimeoutMs ?? 10_000) / 5), onAssignment);
    await subscription.start(tuning.partitionsConsumedConcurrently ?? 1);
    return subscription;
  }
}

/** A subscription that can be told to read a partition again from the subscriber's start offset. */
export interface RepositionableSubscription extends SourceSubscription {
  /**
   * Reads `partition` again from `startOffset(partition)`, as on an assignment: for a subscriber
   * that lost batches it was handed (see kafka-fetch-thread.ts). No-op when not assigned.
   */
  reposition(partition: number): void;
}

/** The fields of a kafkajs message the source reads. */
interface KafkaMessage {
  readonly offset: string;
  readonly timestamp: string;
  readonly value: Buffer | null;
}

class KafkaSubscription implements RepositionableSubscription {
  /** Next offset wanted per assigned (and selected) partition; set once its start is known. */
  private readonly nextOffset = new Map<number, Promise<number>>();
  private assigned: number[] = [];
  /** The partitions to read (SubscribeOptions.selectedPartitions); null: all assigned. */
  private selected: ReadonlySet<number> | null;
  /** Selection changes and assignments, one at a time. */
  private changes: Promise<void> = Promise.resolve();
  /** Ends the waits for start offsets. */
  private readonly stopped = new AbortController();

  constructor(
    private readonly consumer: Consumer,
    private readonly topic: string,
    private readonly options: SubscribeOptions,
    private readonly logger: Logger,
    private readonly heartbeatIntervalMs: number,
    private readonly onAssigned?: (partitions: readonly number[]) => void,
  ) {
    this.selected = options.selectedPartitions ? new Set(options.selectedPartitions) : null;
  }

  assignedPartitions(): readonly number[] {
    return this.assigned;
  }

  select(partitions: readonly number[]): Promise<void> {
    const change = this.changes.then(() => this.applySelection(new Set(partitions)));
    this.changes = change.catch(() => undefined); // the caller gets the error through `change`
    return change;
  }

  private async applySelection(selected: ReadonlySet<number>): Promise<void> {
    this.selected = selected;
    const dropped = [...this.nextOffset.keys()].filter((p) => !selected.has(p));
    const added = this.assigned.filter((p) => selected.has(p) && !this.nextOffset.has(p));
    if (dropped.length > 0) {
      this.consumer.pause([{ topic: this.topic, partitions: dropped }]);
      for (const p of dropped) this.nextOffset.delete(p);
      await this.revoke(dropped);
    }
    if (added.length > 0) {
      await this.seekToStart(added);
      this.consumer.resume([{ topic: this.topic, partitions: added }]);
    }
  }

  async start(partitionsConsumedConcurrently: number): Promise<void> {
    this.consumer.on(this.consumer.events.GROUP_JOIN, ({ payload }) => {
      const partitions = [...(payload.memberAssignment[this.topic] ?? [])].sort((a, b) => a - b);
      void this.onAssignment(partitions); // failures are logged there
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently,
      eachBatch: async ({ batch, heartbeat, isStale }) => {
        const fetched = this.onFetched(batch.partition, batch.messages, Number(batch.highWatermark), isStale);
        await whileHeartbeating(fetched, heartbeat, this.heartbeatIntervalMs);
        await heartbeat();
      },
    });
  }

  private onAssignment(partitions: number[]): Promise<void> {
    const change = this.changes.then(() => this.assign(partitions));
    this.changes = change.catch((error: unknown) => this.logger.error({ err: error, partitions }, 'cannot take up the assigned partitions'));
    return this.changes;
  }

  private async assign(partitions: number[]): Promise<void> {
    const revoked = [...this.nextOffset.keys()].filter((p) => !partitions.includes(p));
    for (const p of revoked) this.nextOffset.delete(p);
    this.assigned = partitions;
    this.onAssigned?.(partitions);
    const unselected = this.selected ? partitions.filter((p) => !this.selected!.has(p)) : [];
    if (unselected.length > 0) this.consumer.pause([{ topic: this.topic, partitions: unselected }]);
    if (revoked.length > 0) await this.revoke(revoked);
    await this.seekToStart(partitions.filter((p) => !unselected.includes(p)));
  }

  /**
   * Tells the subscriber it lost partitions. Its failure is logged and goes no further: the
   * partitions are gone either way, and the assignment must go on to seek the partitions it
   * brings, or they would never be read.
   */
  private async revoke(partitions: readonly number[]): Promise<void> {
    try {
      await this.options.onRevoke?.(partitions);
    } catch (error) {
      this.logger.error({ err: error, topic: this.topic, partitions }, 'the subscriber failed to let go of revoked partitions');
    }
  }

  /**
   * The subscriber's start offset of `partition`, asked again with backoff until it answers (or
   * the subscription stops): a partition whose start is not known is not read, so a failure here
   * would otherwise stall it for good. Each failure is logged as an error naming the partition.
   */
  private startPosition(partition: number): Promise<number> {
    return retry(async () => this.options.startOffset(partition), {
      retries: Infinity,
      isRetriable: () => true,
      minDelayMs: 200,
      maxDelayMs: 5_000,
      signal: this.stopped.signal,
      onRetry: (error, attempt, delayMs) =>
        this.logger.error({ err: error, topic: this.topic, partition, attempt, retryInMs: Math.round(delayMs) }, 'cannot get the start offset of a partition: it is not read until then'),
    });
  }

  /**
   * Seeks partitions not read yet to their start offsets. Every position is registered before
   * anything is awaited: a batch fetched meanwhile waits for its partition's position instead of
   * being dropped. A dropped batch still moves kafkajs past it, and a fetch from there racing the
   * seek would start above the position and be taken for a retention gap (offsets lost for good
   * by a subscriber that trusts the gap).
   */
  private async seekToStart(partitions: readonly number[]): Promise<void> {
    for (const partition of partitions) {
      if (!this.nextOffset.has(partition)) this.nextOffset.set(partition, this.startPosition(partition));
    }
    // Each seeks as soon as its own start is known: one whose start keeps failing holds no other up.
    await Promise.all(
      partitions.map(async (partition) => {
        const position = this.nextOffset.get(partition);
        if (!position) return;
        try {
          this.consumer.seek({ topic: this.topic, partition, offset: String(await position) });
        } catch (error) {
          this.logger.error({ err: error, partition }, 'cannot seek partition to its start offset');
        }
      }),
    );
  }

  reposition(partition: number): void {
    if (!this.nextOffset.has(partition)) return;
    // The seek is made before anyone awaiting the new position goes on: a batch fetched from the
    // old position is then stale (dropped below), not taken for a retention gap.
    const position: Promise<number> = this.startPosition(partition).then((offset) => {
      if (this.nextOffset.get(partition) === position) this.consumer.seek({ topic: this.topic, partition, offset: String(offset) });
      return offset;
    });
    this.nextOffset.set(partition, position);
    position.catch((error: unknown) => this.logger.error({ err: error, partition }, 'cannot reposition partition to its start offset'));
  }

  private async onFetched(partition: number, messages: readonly KafkaMessage[], highWatermark: number, isStale: () => boolean): Promise<void> {
    const position = this.nextOffset.get(partition);
    // Not (or no longer) assigned to us, or its start is not known yet: the seek will refetch.
    if (!position) return;
    const next = await position;
    // Fetched before a seek that has not taken effect yet: the fetch from the seek brings it again.
    if (isStale()) return;
    // A batch's offsets increase; those below the position were fetched before a seek took effect.
    let from = 0;
    while (from < messages.length && Number(messages[from]!.offset) < next) from++;
    if (from === messages.length) return;
    const packed = packFrom(messages, from, (m) => Number(m.offset), (m) => Number(m.timestamp), (m) => m.value);
    const first = packed.offsets[0]!;
    const last = packed.offsets[packed.offsets.length - 1]!;
    if (first > next) {
      // Offsets we never read were deleted (retention): say so, then go on from what exists.
      this.logger.warn({ topic: this.topic, partition, fromOffset: next, toOffsetExclusive: first }, 'offsets deleted before they were read');
      this.options.onGap?.({ partition, fromOffset: next, toOffsetExclusive: first });
    }
    await this.options.onBatch({ topic: this.topic, partition, packed, highWatermark });
    if (this.nextOffset.get(partition) === position) {
      this.nextOffset.set(partition, Promise.resolve(last + 1));
    }
  }

  async stop(): Promise<void> {
    this.stopped.abort();
    await this.consumer.disconnect();
  }
}

/**
 * Awaits `work` (a batch handed to the subscriber, which may hold it back while it is behind)
 * and heartbeats meanwhile: kafkajs heartbeats only between batches, so a batch held for longer
 * than the session timeout would cost the group membership, and a rebalance, every time.
 * A failed heartbeat (a rebalance under way) is left for the heartbeat after the batch to report.
 */
async function whileHeartbeating<T>(work: Promise<T>, heartbeat: () => Promise<void>, intervalMs: number): Promise<T> {
  const timer = setInterval(() => void heartbeat().catch(() => undefined), intervalMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
