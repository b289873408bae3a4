import { batchProgressSchema, type BatchProgress } from '../batch/batch-progress.ts';
import type { BatchProgressStore } from './batch-progress-store.ts';

/**
 * Single-node mode's progress record: in this process's memory, since the batch master and every
 * reader of the record (serving layer, status) are this process. Listeners hear each change
 * synchronously, in order.
 */
export class LocalBatchProgressStore implements BatchProgressStore {
  private record: BatchProgress | undefined;
  private readonly listeners = new Set<(progress: BatchProgress | undefined) => void>();

  publish(progress: BatchProgress): Promise<void> {
    // Checked as the ZooKeeper store checks it, so that a bad record fails in tests single-node too.
    const parsed = batchProgressSchema.safeParse(progress);
    if (!parsed.success) return Promise.reject(parsed.error);
    this.record = parsed.data;
    this.notify();
    return Promise.resolve();
  }

  clear(): Promise<void> {
    this.record = undefined;
    this.notify();
    return Promise.resolve();
  }

  current(): Promise<BatchProgress | undefined> {
    return Promise.resolve(this.record && structuredClone(this.record));
  }

  watch(listener: (progress: BatchProgress | undefined) => void): () => void {
    this.listeners.add(listener);
    listener(this.record && structuredClone(this.record));
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener(this.record && structuredClone(this.record));
  }
}
