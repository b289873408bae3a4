import { parseBatchProgress, serializeBatchProgress, type BatchProgress } from '../batch/batch-progress.ts';
import type { Logger } from '../observability/logger.ts';
import type { BatchProgressStore } from './batch-progress-store.ts';
import { isZkError } from './zk-client.ts';
import { watchZnode } from './zk-node-watch.ts';
import type { ZkSession } from './zk-session.ts';

/**
 * `<root>/batch/progress`: one znode the batch master overwrites (setData at any version, or
 * creates) while a run goes; every node reads or watches it. A record is a few hundred bytes per
 * view, written at most every ~500 ms, far below what ZooKeeper takes in writes.
 *
 * Unfenced on purpose (BatchProgressStore): a deposed master that writes once more between its
 * term's end and noticing it only makes the record stale until the new master's next write; the
 * record carries `producedBy` and `batchVersion`, so a reader can tell.
 */
export class ZkBatchProgressStore implements BatchProgressStore {
  readonly path: string;

  constructor(
    private readonly session: ZkSession,
    /** The cluster root (config zookeeper.root), e.g. `/lambda/demo`. */
    readonly root: string,
    private readonly logger: Logger,
  ) {
    this.path = `${root}/batch/progress`;
  }

  async publish(progress: BatchProgress): Promise<void> {
    const data = serializeBatchProgress(progress);
    const { client } = this.session;
    try {
      await client.set(this.path, data, -1);
      return;
    } catch (error) {
      if (!isZkError(error, 'NONODE')) throw error;
    }
    await client.mkdirp(`${this.root}/batch`);
    try {
      await client.create(this.path, data, 'persistent');
    } catch (error) {
      // Created between our set and create (a previous master's last write): overwrite it.
      if (!isZkError(error, 'NODEEXISTS')) throw error;
      await client.set(this.path, data, -1);
    }
  }

  async clear(): Promise<void> {
    try {
      await this.session.client.delete(this.path, -1);
    } catch (error) {
      if (!isZkError(error, 'NONODE')) throw error;
    }
  }

  async current(): Promise<BatchProgress | undefined> {
    const node = await this.session.client.get(this.path);
    return node && node.data.length > 0 ? parseBatchProgress(node.data) : undefined;
  }

  watch(listener: (progress: BatchProgress | undefined) => void): () => void {
    return watchZnode(
      this.session,
      this.path,
      (data) => {
        let progress: BatchProgress;
        try {
          progress = parseBatchProgress(data);
        } catch (error) {
          // A record this node cannot read (a newer writer's format) is shown as none, not thrown into the watch.
          this.logger.warn({ err: error, path: this.path }, 'cannot parse the batch progress record');
          return;
        }
        listener(progress);
      },
      this.logger,
      () => listener(undefined),
    );
  }
}
