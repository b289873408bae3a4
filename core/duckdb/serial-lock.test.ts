import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { SerialLock } from './serial-lock.ts';

describe('SerialLock', () => {
  it('runs tasks one at a time in call order, however long each takes', async () => {
    const lock = new SerialLock();
    const events: string[] = [];
    let running = 0;
    let mostRunning = 0;
    const delaysMs = [30, 1, 15, 0, 8];
    const results = await Promise.all(
      delaysMs.map((delayMs, i) =>
        lock.runExclusive(async () => {
          running++;
          mostRunning = Math.max(mostRunning, running);
          events.push(`start ${i}`);
          await sleep(delayMs);
          events.push(`end ${i}`);
          running--;
          return i * 10;
        }),
      ),
    );
    expect(mostRunning).toBe(1);
    expect(events).toEqual(delaysMs.flatMap((_, i) => [`start ${i}`, `end ${i}`]));
    expect(results).toEqual([0, 10, 20, 30, 40]);
  });

  it('gives a failed task its error and still runs the tasks queued after it', async () => {
    const lock = new SerialLock();
    const failure = new Error('task failed');
    const order: number[] = [];
    const first = lock.runExclusive(async () => {
      await sleep(5);
      order.push(1);
      throw failure;
    });
    const second = lock.runExclusive(async () => {
      order.push(2);
      return 'second';
    });
    await expect(first).rejects.toBe(failure);
    await expect(second).resolves.toBe('second');
    expect(order).toEqual([1, 2]);
  });
});
