import { retry } from '../core/retry/retry.ts';

export interface MicroBatcherOptions<T, P = void> {
  /** A micro-batch starts this long after the previous one started, if anything is waiting. */
  readonly intervalMs: number;
  /** ...or as soon as this many items wait; no micro-batch is larger. */
  readonly maxItems: number;
  /**
   * `add` makes its caller wait while more than this many items wait (default 2 × maxItems),
   * counting a micro-batch that is prepared but not yet processing as waiting.
   */
  readonly maxWaitingItems?: number;
  /**
   * The first half of a micro-batch, free of side effects that matter: it runs while the previous
   * micro-batch is still being processed (a two-stage pipeline). At most two prepared results
   * are alive at a time: the one processing (and its retries) and the next one.
   */
  readonly prepare?: (items: T[]) => Promise<P>;
  /** Processes one micro-batch. When it throws, the same items are retried after a back-off. */
  readonly process: (items: T[], prepared: P) => Promise<void>;
  readonly onError?: (error: unknown, attempt: number) => void;
  readonly retryDelayMs?: { initial: number; max: number };
  /**
   * Entries that stand for several items (runs of records): how many each counts for, and how to
   * cut one in two, so that a micro-batch holds at most `maxItems` items. By default an entry is
   * one item. Every limit above counts items.
   */
  readonly sizing?: { size(entry: T): number; split(entry: T, count: number): [T, T] };
}

const ONE_EACH = { size: () => 1, split: () => { throw new Error('an entry of one item is never split'); } };

/**
 * Cuts a stream of items into micro-batches by time or size, whichever comes first, and runs
 * them one at a time, in order. A micro-batch is prepared as soon as it is cut, while the one
 * before it is still processing, so that the two stages overlap. A failed micro-batch is
 * processed again as is (its transaction was rolled back), so items are neither lost nor
 * processed twice, and no later micro-batch is processed before it; meanwhile new items wait,
 * and `add` pushes back on the producer once too many are waiting.
 */
export class MicroBatcher<T, P = void> {
  private waiting: T[] = [];
  /** Items in `waiting`. */
  private waitingSize = 0;
  /** Items of the micro-batch cut and preparing, not processing yet: they still count as waiting. */
  private preparingCount = 0;
  private lastStartMs = 0;
  private stopped = false;
  /** Aborted by stop(): a micro-batch waiting to be retried is not. */
  private readonly stopping = new AbortController();
  private wake: (() => void) | undefined;
  private drained: (() => void)[] = [];
  private loop: Promise<void> | undefined;

  private readonly sizing: NonNullable<MicroBatcherOptions<T, P>['sizing']>;

  constructor(private readonly options: MicroBatcherOptions<T, P>) {
    this.sizing = options.sizing ?? ONE_EACH;
  }

  /** Items waiting for a micro-batch. */
  get waitingCount(): number {
    return this.waitingSize;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Queues entries; resolves once their items fit under the waiting limit. */
  async add(entries: readonly T[]): Promise<void> {
    const wasEmpty = this.waitingSize === 0;
    for (const entry of entries) {
      const size = this.sizing.size(entry);
      if (size === 0) continue;
      this.waiting.push(entry);
      this.waitingSize += size;
    }
    if (this.waitingSize === 0) return;
    // The loop sleeps until the interval is up once items wait; it needs waking only to start
    // that clock or because a full micro-batch is ready.
    if (wasEmpty || this.waitingSize >= this.options.maxItems) this.wake?.();
    const limit = this.options.maxWaitingItems ?? 2 * this.options.maxItems;
    while (this.waitingSize + this.preparingCount > limit && !this.stopped) {
      await new Promise<void>((resolve) => this.drained.push(resolve));
    }
  }

  /** Stops after the micro-batch in progress; items still waiting (or only prepared) are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    this.wake?.();
    this.releaseProducers();
    await this.loop;
  }

  private async run(): Promise<void> {
    let processing: Promise<void> = Promise.resolve();
    while (!this.stopped) {
      const dueInMs = this.lastStartMs + this.options.intervalMs - Date.now();
      if (this.waitingSize >= this.options.maxItems || (this.waitingSize > 0 && dueInMs <= 0)) {
        this.lastStartMs = Date.now();
        const items = this.cut();
        const prepared = this.prepare(items);
        await processing;
        this.preparingCount = 0;
        this.releaseProducers();
        if (this.stopped) {
          // Ignored: stopping drops this micro-batch unprocessed (its records are read again on the next start).
          await prepared.catch(() => undefined);
          break;
        }
        processing = this.processWithRetry(items, prepared).finally(() => this.releaseProducers());
      } else {
        // Wakes for new items or stop only; the micro-batch processing meanwhile goes on.
        await this.sleepUntilWoken(this.waitingSize > 0 ? dueInMs : undefined);
      }
    }
    await processing;
  }

  /** Takes the next micro-batch's entries off the queue: at most maxItems items, an entry cut if need be. */
  private cut(): T[] {
    const items: T[] = [];
    let taken = 0;
    while (this.waiting.length > 0 && taken < this.options.maxItems) {
      const entry = this.waiting[0]!;
      const size = this.sizing.size(entry);
      const room = this.options.maxItems - taken;
      if (size <= room) {
        items.push(entry);
        this.waiting.shift();
        taken += size;
      } else {
        const [head, tail] = this.sizing.split(entry, room);
        items.push(head);
        this.waiting[0] = tail;
        taken += room;
      }
    }
    this.waitingSize -= taken;
    this.preparingCount = taken;
    return items;
  }

  private prepare(items: T[]): Promise<P> {
    const { prepare } = this.options;
    const prepared = prepare ? Promise.resolve().then(() => prepare(items)) : Promise.resolve(undefined as P);
    // Its failure is handled (and retried) when the micro-batch's turn to process comes.
    prepared.catch(() => undefined);
    return prepared;
  }

  /**
   * Processes `items` until it succeeds or the batcher stops. A failed process is retried with the
   * same prepared result (processing leaves it as it was); a failed prepare is prepared again.
   */
  private async processWithRetry(items: T[], firstPrepared: Promise<P>): Promise<void> {
    const delay = this.options.retryDelayMs ?? { initial: 100, max: 5_000 };
    let prepared = firstPrepared;
    const attempt = async ({ attempt }: { attempt: number }): Promise<void> => {
      try {
        if (attempt > 1 && (await prepared.then(() => false, () => true))) prepared = this.prepare(items);
        await this.options.process(items, await prepared);
      } catch (error) {
        this.options.onError?.(error, attempt);
        throw error;
      }
    };
    const retries = { retries: Infinity, signal: this.stopping.signal, minDelayMs: delay.initial, maxDelayMs: delay.max, jitter: 'equal', isRetriable: () => !this.stopped } as const;
    // Given up only on stop, when what is still waiting is dropped too; onError heard each failure.
    await retry(attempt, retries).catch(() => undefined);
  }

  /** Sleeps until `add` or `stop` wakes the loop, or `timeoutMs` is up (if given). */
  private sleepUntilWoken(timeoutMs: number | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      if (timeoutMs !== undefined) timer = setTimeout(done, timeoutMs);
      this.wake = done;
    });
  }

  private releaseProducers(): void {
    for (const resolve of this.drained.splice(0)) resolve();
  }
}
