import { setTimeout as sleep } from 'node:timers/promises';

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
}

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
  /** Items of the micro-batch cut and preparing, not processing yet: they still count as waiting. */
  private preparingCount = 0;
  private lastStartMs = 0;
  private stopped = false;
  private wake: (() => void) | undefined;
  private drained: (() => void)[] = [];
  private loop: Promise<void> | undefined;

  constructor(private readonly options: MicroBatcherOptions<T, P>) {}

  get waitingCount(): number {
    return this.waiting.length;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Queues items; resolves once they fit under the waiting limit. */
  async add(items: readonly T[]): Promise<void> {
    if (items.length === 0) return;
    const wasEmpty = this.waiting.length === 0;
    for (const item of items) this.waiting.push(item);
    // The loop sleeps until the interval is up once items wait; it needs waking only to start
    // that clock or because a full micro-batch is ready.
    if (wasEmpty || this.waiting.length >= this.options.maxItems) this.wake?.();
    const limit = this.options.maxWaitingItems ?? 2 * this.options.maxItems;
    while (this.waiting.length + this.preparingCount > limit && !this.stopped) {
      await new Promise<void>((resolve) => this.drained.push(resolve));
    }
  }

  /** Stops after the micro-batch in progress; items still waiting (or only prepared) are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.releaseProducers();
    await this.loop;
  }

  private async run(): Promise<void> {
    let processing: Promise<void> = Promise.resolve();
    while (!this.stopped) {
      const dueInMs = this.lastStartMs + this.options.intervalMs - Date.now();
      if (this.waiting.length >= this.options.maxItems || (this.waiting.length > 0 && dueInMs <= 0)) {
        this.lastStartMs = Date.now();
        const items = this.waiting.splice(0, this.options.maxItems);
        this.preparingCount = items.length;
        const prepared = this.prepare(items);
        await processing;
        this.preparingCount = 0;
        this.releaseProducers();
        if (this.stopped) {
          await prepared.catch(() => undefined);
          break;
        }
        processing = this.processWithRetry(items, prepared).finally(() => this.releaseProducers());
      } else {
        // Wakes for new items or stop only; the micro-batch processing meanwhile goes on.
        await this.sleepUntilWoken(this.waiting.length > 0 ? dueInMs : undefined);
      }
    }
    await processing;
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
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.process(items, await prepared);
        return;
      } catch (error) {
        this.options.onError?.(error, attempt);
        if (this.stopped) return;
        await sleep(Math.min(delay.max, delay.initial * 2 ** (attempt - 1)));
        if (this.stopped) return;
        if (await prepared.then(() => false, () => true)) prepared = this.prepare(items);
      }
    }
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
