import { pollVersioned } from './poll-versioned.ts';

/**
 * The watchers of a versioned document kept in a local file (LocalDefinitionsStore,
 * LocalBatchManifestStore). A write made by this process is heard by this process's watchers at
 * once (`published`); one made by another process sharing the directory (`lambda apply` writing
 * the file, a second store object) is heard at the next poll. Either way each watcher hears each
 * version above the last one it heard, once, in increasing order.
 */
export class LocalWatchers<T extends { readonly version: number }> {
  private readonly watchers = new Set<(document: T) => void>();

  constructor(
    private readonly current: () => Promise<T | undefined>,
    private readonly pollIntervalMs: number,
  ) {}

  watch(listener: (document: T) => void): () => void {
    let lastVersion = 0;
    const hear = (document: T) => {
      if (document.version <= lastVersion) return;
      lastVersion = document.version;
      listener(document);
    };
    this.watchers.add(hear);
    const stopPolling = pollVersioned(this.current, hear, this.pollIntervalMs);
    return () => {
      this.watchers.delete(hear);
      stopPolling();
    };
  }

  /**
   * Tells this process's watchers of `document`, just written durably, without waiting for their
   * poll. A listener's throw is its own: the write it hears of has happened.
   */
  published(document: T): void {
    for (const hear of [...this.watchers]) {
      try {
        hear(document);
      } catch {
        // As with a poll: the listener's failure does not undo the publication.
      }
    }
  }
}
