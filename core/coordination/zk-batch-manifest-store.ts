import { parseBatchManifest, serializeBatchManifest, type BatchManifest } from '../batch/batch-manifest.ts';
import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { BatchManifestStore } from './batch-manifest-store.ts';
import { ZkLeadership } from './leader-election.ts';
import type { Leadership } from './leadership.ts';
import { isZkError, type ZkClient } from './zk-client.ts';
import type { ZkSession } from './zk-session.ts';

/**
 * `batch/current` in ZooKeeper.
 *
 * Fencing. ZooKeeper's multi-op (check the election node + set) is the textbook fence, but the
 * `zookeeper` package does not expose `zoo_amulti` (node-zookeeper issue #320). The same guarantee
 * comes from where the write is sent: it goes over the session that owns the term's election node,
 * after checking that node exists and is owned by that session, as a compare-and-set on
 * `batch/current`'s version. ZooKeeper runs a session's requests in order and rejects every request
 * of a session once it has begun closing it; closing a session deletes its ephemeral nodes in that
 * same step. So a write that succeeds was applied while the election node existed, i.e. while this
 * member led; a master paused past its session timeout fails with SESSIONEXPIRED; and a write
 * racing another master's fails its version check. The term's signal and the event-loop stall
 * check (ZkLeadership.isCurrent) stop a paused master before it even sends anything.
 */
export class ZkBatchManifestStore implements BatchManifestStore {
  readonly currentPath: string;

  constructor(
    private readonly session: ZkSession,
    /** The cluster root (config zookeeper.root), e.g. `/lambda/demo`. */
    readonly root: string,
    private readonly logger: Logger,
  ) {
    this.currentPath = `${root}/batch/current`;
  }

  async current(): Promise<BatchManifest | undefined> {
    const node = await this.session.client.get(this.currentPath);
    return node && node.data.length > 0 ? parseBatchManifest(node.data) : undefined;
  }

  async publish(manifest: BatchManifest, leadership: Leadership): Promise<void> {
    if (!(leadership instanceof ZkLeadership)) throw new CoordinationError('publishing to ZooKeeper needs a ZooKeeper leadership term');
    const fenced = (why: string) =>
      new CoordinationError(`not publishing batch version ${manifest.version}: ${why}`, {
        context: { version: manifest.version, node: leadership.electionNodePath },
      });
    const { client } = leadership;
    if (!leadership.isCurrent()) throw fenced('this member is no longer the batch master');
    const election = await client.exists(leadership.electionNodePath);
    if (!election || election.ephemeralOwner !== client.sessionId) throw fenced('its election node is gone');
    await client.mkdirp(`${this.root}/batch`);
    const existing = await client.get(this.currentPath);
    const published = existing && existing.data.length > 0 ? parseBatchManifest(existing.data) : undefined;
    if (published && published.version >= manifest.version) throw fenced(`version ${published.version} is already published`);
    if (!leadership.isCurrent()) throw fenced('this member is no longer the batch master');
    const data = serializeBatchManifest(manifest);
    try {
      if (existing) await client.set(this.currentPath, data, existing.version);
      else await client.create(this.currentPath, data, 'persistent');
    } catch (error) {
      if (isZkError(error, 'BADVERSION') || isZkError(error, 'NODEEXISTS')) throw fenced('another batch master published meanwhile');
      throw error;
    }
    this.logger.info({ version: manifest.version, cuts: manifest.cuts, node: leadership.electionNodePath }, 'published batch version');
  }

  watch(listener: (manifest: BatchManifest) => void): () => void {
    let stopped = false;
    let lastVersion = 0;
    let reading = false;
    let again = false;
    const deliver = (manifest: BatchManifest | undefined) => {
      if (stopped || !manifest || manifest.version <= lastVersion) return;
      lastVersion = manifest.version;
      listener(manifest);
    };
    // One read at a time; a change seen meanwhile triggers one more read, so none is missed.
    const read = async (): Promise<void> => {
      if (stopped) return;
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          await readAndWatch(this.session.client);
        } while (again && !stopped);
      } finally {
        reading = false;
      }
    };
    const readAndWatch = async (client: ZkClient): Promise<void> => {
      try {
        const node = await client.get(this.currentPath, () => void read());
        if (node === null) {
          if ((await client.exists(this.currentPath, () => void read())) !== null) again = true;
          return;
        }
        if (node.data.length > 0) deliver(parseBatchManifest(node.data));
      } catch (error) {
        this.logger.warn({ err: error, path: this.currentPath }, 'cannot read the published batch version; retrying after reconnection');
      }
    };
    const unsubscribe = this.session.onEvent((event) => {
      if (event === 'reconnected' || event === 'new-session') void read();
    });
    void read();
    return () => {
      stopped = true;
      unsubscribe();
    };
  }
}
