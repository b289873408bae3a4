import { afterEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../test/harness/wait-for.ts';
import { MicroBatcher } from './micro-batcher.ts';

// Tests of timing run on a fake clock and move it on by exactly what they mean to, so "not yet"
// and "now" are both checked without real sleeps. Retries wait through core/retry's
// node:timers/promises sleep, which the fake clock does not drive: those tests wait for the
// outcome instead.
const elapse = (ms: number): Promise<void> => vi.advanceTimersByTimeAsync(ms).then(() => undefined);

describe('MicroBatcher', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts a micro-batch when the interval is up, with everything waiting', async () => {
    vi.useFakeTimers();
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number>({ intervalMs: 400, maxItems: 1_000, process: async (items) => void batches.push(items) });
    batcher.start();
    await batcher.add([1]);
    await elapse(20);
    await batcher.add([2, 3]);
    await batcher.add([4]);
    expect(batches).toEqual([[1]]);
    // The interval runs from the start of the previous micro-batch (at 0 ms): not at 399 ms, at 400.
    await elapse(379);
    expect(batches).toEqual([[1]]);
    await elapse(1);
    expect(batches).toEqual([[1], [2, 3, 4]]);
    await batcher.stop();
  });

  it('starts a micro-batch as soon as maxItems wait, never larger than maxItems', async () => {
    vi.useFakeTimers();
    const batches: number[][] = [];
    const batcher = new MicroBatcher<number>({ intervalMs: 60_000, maxItems: 3, process: async (items) => void batches.push(items) });
    batcher.start();
    await batcher.add([0]);
    await elapse(10);
    await batcher.add([1, 2, 3, 4]);
    await elapse(20);
    expect(batches).toEqual([[0], [1, 2, 3]]);
    expect(batcher.waitingCount).toBe(1);
    await batcher.stop();
  });

  it('counts entries that stand for several items by their size, cutting one when a micro-batch is full', async () => {
    vi.useFakeTimers();
    type Range = [number, number]; // items start..end-1
    const batches: Range[][] = [];
    const batcher = new MicroBatcher<Range>({
      intervalMs: 60_000,
      maxItems: 5,
      maxWaitingItems: 100,
      process: async (items) => void batches.push(items),
      sizing: { size: ([a, b]) => b - a, split: ([a, b], n) => [[a, a + n], [a + n, b]] },
    });
    batcher.start();
    await batcher.add([[0, 3], [3, 3], [3, 9], [9, 10]]);
    await elapse(20);
    await batcher.add([[10, 14]]);
    await elapse(20);
    expect(batches).toEqual([[[0, 3], [3, 5]], [[5, 9], [9, 10]]]);
    expect(batcher.waitingCount).toBe(4);
    // Whatever the cuts, every item reaches a micro-batch once, in order.
    await batcher.add([[14, 17]]);
    await elapse(20);
    expect(batches.flat().flatMap(([a, b]) => Array.from({ length: b - a }, (_, k) => a + k))).toEqual(Array.from({ length: 15 }, (_, k) => k));
    expect(batches.every((b) => b.reduce((n, [x, y]) => n + y - x, 0) <= 5)).toBe(true);
    await batcher.stop();
  });

  it('retries a failed micro-batch with the same items, in order, before any later item', async () => {
    const attempts: number[][] = [];
    let failures = 2;
    const errors: number[] = [];
    const batcher = new MicroBatcher<number>({
      intervalMs: 10,
      maxItems: 100,
      retryDelayMs: { initial: 5, max: 10 },
      process: async (items) => {
        attempts.push(items);
        if (failures-- > 0) throw new Error('transient');
      },
      onError: (_, attempt) => errors.push(attempt),
    });
    batcher.start();
    await batcher.add([1, 2]);
    await waitFor('the first attempt', () => attempts.length > 0);
    await batcher.add([3]);
    await waitFor(() => `item 3 processed; attempts so far ${JSON.stringify(attempts)}`, () => attempts.flat().includes(3), 5_000, 5);
    expect(attempts.slice(0, 3)).toEqual([[1, 2], [1, 2], [1, 2]]);
    expect(attempts.slice(3).flat()).toEqual([3]);
    expect(errors).toEqual([1, 2]);
    await batcher.stop();
  });

  it('makes the producer wait while too many items wait, and lets it go when they are processed', async () => {
    vi.useFakeTimers();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new MicroBatcher<number>({ intervalMs: 1, maxItems: 2, maxWaitingItems: 3, process: () => gate });
    batcher.start();
    await batcher.add([1, 2]); // taken by the first micro-batch, which blocks on the gate
    await elapse(10);
    await batcher.add([3, 4, 5]);
    let added = false;
    const blocked = batcher.add([6]).then(() => (added = true));
    await elapse(30);
    expect(added).toBe(false);
    release();
    await blocked;
    expect(added).toBe(true);
    await batcher.stop();
  });

  it('stops after the micro-batch in progress and releases waiting producers', async () => {
    const processed: number[] = [];
    const batcher = new MicroBatcher<number>({
      intervalMs: 1,
      maxItems: 1,
      maxWaitingItems: 1,
      process: async (items) => {
        await new Promise((resolve) => setTimeout(resolve, 30));
        processed.push(...items);
      },
    });
    batcher.start();
    await batcher.add([1]);
    await waitFor('the first micro-batch to be cut', () => batcher.waitingCount === 0, 5_000, 1);
    const producer = batcher.add([2, 3, 4]);
    await batcher.stop();
    await producer;
    expect(processed).toEqual([1]);
  });

  it('prepares the next micro-batch while the one before is processing, and processes them in order', async () => {
    vi.useFakeTimers();
    const events: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new MicroBatcher<number, string>({
      intervalMs: 1,
      maxItems: 2,
      prepare: async (items) => {
        events.push(`prepare ${items.join(',')}`);
        return items.join('+');
      },
      process: async (items, prepared) => {
        events.push(`process ${prepared}`);
        if (items[0] === 1) await gate;
      },
    });
    batcher.start();
    await batcher.add([1, 2]);
    await elapse(20);
    await batcher.add([3, 4]);
    await elapse(30);
    expect(events).toEqual(['prepare 1,2', 'process 1+2', 'prepare 3,4']);
    release();
    await elapse(30);
    expect(events).toEqual(['prepare 1,2', 'process 1+2', 'prepare 3,4', 'process 3+4']);
    await batcher.stop();
  });

  it('retries processing with the same prepared result, and prepares again only what failed to prepare', async () => {
    const prepared: number[][] = [];
    const processed: string[] = [];
    let prepareFailures = 1;
    let processFailures = 2;
    const batcher = new MicroBatcher<number, string>({
      intervalMs: 1,
      maxItems: 10,
      retryDelayMs: { initial: 5, max: 10 },
      prepare: async (items) => {
        prepared.push(items);
        if (prepareFailures-- > 0) throw new Error('decode failed');
        return `decoded ${items.join(',')} #${prepared.length}`;
      },
      process: async (_, result) => {
        processed.push(result);
        if (processFailures-- > 0) throw new Error('commit failed');
      },
    });
    batcher.start();
    await batcher.add([1, 2]);
    await waitFor(() => `a third process attempt; so far ${JSON.stringify(processed)}`, () => processed.length >= 3, 5_000, 5);
    expect(prepared).toEqual([[1, 2], [1, 2]]);
    expect(processed).toEqual(['decoded 1,2 #2', 'decoded 1,2 #2', 'decoded 1,2 #2']);
    await batcher.stop();
  });
});
