/**
 * Runs async tasks one at a time, in call order. A DuckDB connection runs one statement at a
 * time, and a multi-statement transaction must not interleave with another caller's statements,
 * so every user of a shared connection goes through one lock. A failed task does not block the
 * ones after it; its error goes to its own caller only.
 */
export class SerialLock {
  private tail: Promise<unknown> = Promise.resolve();

  runExclusive<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    // Ignored here: `result` carries the error to the caller; the tail only orders the next task.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
