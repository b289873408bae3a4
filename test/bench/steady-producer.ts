import type { LocalLog } from '../../core/source/local-log.ts';
import { benchEvent } from '../support/single-node-history.ts';

const TICK_MS = 50;

/**
 * Appends events to a local log at a steady rate (a tick every 50 ms), event times = the wall
 * clock, and remembers when each offset range was acknowledged (durable), so that a reader who
 * sees the first n events counted knows how old the newest of them is.
 */
export class SteadyProducer {
  /** Acknowledged ranges in offset order: end offset (exclusive) and when the append resolved. */
  private readonly acks: { readonly endOffsetExclusive: number; readonly ackedAtMs: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private produced = 0;
  private inFlight: Promise<unknown> = Promise.resolve();
  private readonly startedAtMs: number;
  /** The log's first offset this produced. */
  readonly firstOffset: number;

  constructor(
    private readonly log: LocalLog,
    private readonly eventsPerSecond: number,
  ) {
    this.firstOffset = log.endOffset;
    this.startedAtMs = performance.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Events acknowledged so far. */
  get acknowledged(): number {
    return this.acks.length === 0 ? 0 : this.acks.at(-1)!.endOffsetExclusive - this.firstOffset;
  }

  private tick(): void {
    const due = Math.floor(((performance.now() - this.startedAtMs) / 1000) * this.eventsPerSecond) - this.produced;
    if (due <= 0) return;
    const values = Array.from({ length: due }, (_, k) => Buffer.from(JSON.stringify(benchEvent(this.produced + k, Date.now()))));
    this.produced += due;
    // Appends resolve in offset order (the log commits groups in arrival order).
    this.inFlight = this.log.append(values).then((range) => this.acks.push({ endOffsetExclusive: range.endOffsetExclusive, ackedAtMs: performance.now() }));
  }

  /**
   * When the event at `offset` was acknowledged (performance.now() clock); undefined below the
   * first produced offset or above the last acknowledged one.
   */
  ackedAtMs(offset: number): number | undefined {
    let lo = 0;
    let hi = this.acks.length - 1;
    if (offset < this.firstOffset || hi < 0 || offset >= this.acks[hi]!.endOffsetExclusive) return undefined;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.acks[mid]!.endOffsetExclusive > offset) hi = mid;
      else lo = mid + 1;
    }
    return this.acks[lo]!.ackedAtMs;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }
}
