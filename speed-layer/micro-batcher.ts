import { setTimeout as sleep } from 'node:timers/promises';

export interface MicroBatcherOptions<T> {
  /** A micro-batch starts this long after the previous one started, if anything is waiting. */
  readonly intervalMs: number;
  /** ...or as soon as this many items wait; no micro-batch is larger. */
  readonly maxItems: number;
  /** `add` makes its caller wait while more than this many items wait (default 2 × maxItems). */
  readonly maxWaitingItems?: number;
  /** Processes one micro-batch. When it throws, the same items are retried after a back-off. */
  readonly process: (items: T[]) => Promise<void>;
  readonly onError?: (error: unknown, attempt: number) => void;
  readonly retryDelayMs?: { initial: number; max: number };
}

/**
 * Cuts a stream of items into micro-batches by time or size, whichever comes first, and runs
 * them one at a time. A failed micro-batch is retried as is (its transaction was rolled back),
 * so items are neither lost nor processed twice; meanwhile new items wait, and `add` pushes back
 * on the producer once too many are waiting.
 */
export class MicroBatcher<T> {
  private waiting: T[] = [];
  private lastStartMs = 0;
  private stopped = false;
  private wake: (() => void) | undefined;
  private drained: (() => void)[] = [];
  private loop: Promise<void> | undefined;

  constructor(private readonly options: MicroBatcherOptions<T>) {}

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
    while (this.waiting.length > limit && !this.stopped) {
      await new Promise<void>((resolve) => this.drained.push(resolve));
    }
  }

  /** Stops after the micro-batch in progress; items still waiting are dropped. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.releaseProducers();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const dueInMs = this.lastStartMs + this.options.intervalMs - Date.now();
      if (this.waiting.length >= this.options.maxItems || (this.waiting.length > 0 && dueInMs <= 0)) {
        this.lastStartMs = Date.now();
        await this.processWithRetry(this.waiting.splice(0, this.options.maxItems));
        this.releaseProducers();
      } else {
        await this.sleepUntilWoken(this.waiting.length > 0 ? dueInMs : undefined);
      }
    }
  }

  private async processWithRetry(items: T[]): Promise<void> {
    const delay = this.options.retryDelayMs ?? { initial: 100, max: 5_000 };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.process(items);
        return;
      } catch (error) {
        this.options.onError?.(error, attempt);
        if (this.stopped) return;
        await sleep(Math.min(delay.max, delay.initial * 2 ** (attempt - 1)));
        if (this.stopped) return;
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
