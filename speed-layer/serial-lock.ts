/**
 * Runs async tasks one at a time, in call order. The speed layer's writer connection carries one
 * transaction at a time, so every write to realtime state (a micro-batch commit, a compaction, a
 * batch handoff) goes through one lock; a failed task does not block the ones after it.
 */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();

  runExclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
