import { describe, expect, it } from 'vitest';
import { SerialLock } from './serial-lock.ts';

/** A promise the test resolves when it chooses: how long a task takes is up to the test. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe('SerialLock', () => {
  it('runs tasks one at a time in call order, whichever finishes its work first', async () => {
    const lock = new SerialLock();
    const events: string[] = [];
    let running = 0;
    let mostRunning = 0;
    const gates = Array.from({ length: 5 }, gate);
    const results = Promise.all(
      gates.map(({ opened }, i) =>
        lock.runExclusive(async () => {
          running++;
          mostRunning = Math.max(mostRunning, running);
          events.push(`start ${i}`);
          await opened;
          events.push(`end ${i}`);
          running--;
          return i * 10;
        }),
      ),
    );
    // The last task's work is done first, the first task's last.
    for (const { open } of [...gates].reverse()) {
      open();
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await results).toEqual([0, 10, 20, 30, 40]);
    expect(mostRunning).toBe(1);
    expect(events).toEqual(gates.flatMap((_, i) => [`start ${i}`, `end ${i}`]));
  });

  it('gives a failed task its error and still runs the tasks queued after it', async () => {
    const lock = new SerialLock();
    const failure = new Error('task failed');
    const order: number[] = [];
    const { opened, open } = gate();
    const first = lock.runExclusive(async () => {
      await opened;
      order.push(1);
      throw failure;
    });
    const second = lock.runExclusive(async () => {
      order.push(2);
      return 'second';
    });
    open();
    await expect(first).rejects.toBe(failure);
    await expect(second).resolves.toBe('second');
    expect(order).toEqual([1, 2]);
  });
});
