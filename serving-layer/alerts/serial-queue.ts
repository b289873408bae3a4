/**
 * Runs async tasks one at a time, in call order. A DuckDB connection runs one statement at a
 * time, and a multi-statement transaction must not interleave with another caller's statements.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
