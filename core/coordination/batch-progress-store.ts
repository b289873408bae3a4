import type { BatchProgress } from '../batch/batch-progress.ts';

/**
 * Where the batch master publishes its run's progress (`<zookeeper.root>/batch/progress` in a
 * cluster, this process's memory single-node). Contract, for every implementation:
 * - `current` answers the last record published, or undefined before any and after `clear`.
 * - `watch` calls the listener with the current state at once (undefined when there is none) and
 *   then after each change; intermediate records may be skipped, the last one never is.
 * - Writes are not fenced: the record is informational. Only the batch master writes it, and only
 *   while its term holds; exactness comes from the manifest, never from this record.
 */
export interface BatchProgressStore {
  publish(progress: BatchProgress): Promise<void>;
  clear(): Promise<void>;
  current(): Promise<BatchProgress | undefined>;
  watch(listener: (progress: BatchProgress | undefined) => void): () => void;
}
