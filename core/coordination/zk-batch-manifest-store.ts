import { parseBatchManifest, serializeBatchManifest, type BatchManifest } from '../batch/batch-manifest.ts';
import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { retry } from '../retry/retry.ts';
import type { BatchManifestStore } from './batch-manifest-store.ts';
import { ZkLeadership } from './leader-election.ts';
import type { Leadership } from './leadership.ts';
import { isZkError, type ZkClient } from './zk-client.ts';
import type { ZkSession } from './zk-session.ts';

/**
 * `batch/current` in ZooKeeper.
 *
 * Fencing (DESIGN.md, "Coordination"): a version is published by one ZooKeeper multi-op that
 * checks the term's election node (path and data version) and sets `batch/current` at the version
 * just read (or creates it). ZooKeeper applies both or neither, and deletes a session's ephemeral
 * nodes in the same step that expires it; the election node's owner leads as long as it exists
 * (lower sequence numbers are never created again). So a publish that succeeds was applied while
 * this member led; a master paused past its session timeout fails on the check, and a write racing
 * another master's fails its version check, writing nothing either way. The `zookeeper` package has
 * no multi-op (node-zookeeper issue #320): the transaction goes over node-zookeeper-client
 * (ZkTransaction, ZkSession.transactions()), everything else over ZkClient. The term's signal and
 * the event-loop stall check (ZkLeadership.isCurrent) stop a paused master before it sends anything.
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
    const transactions = await this.session.transactions();
    try {
      await transactions.commit([
        { op: 'check', path: leadership.electionNodePath, version: election.version },
        existing ? { op: 'set', path: this.currentPath, data, version: existing.version } : { op: 'create', path: this.currentPath, data },
      ]);
    } catch (error) {
      const failedOp = error instanceof CoordinationError ? error.context['failedOp'] : undefined;
      if (failedOp === 0) throw fenced('its election node is gone (the session expired) or changed');
      if (failedOp === 1 && (isZkError(error, 'BADVERSION') || isZkError(error, 'NODEEXISTS'))) throw fenced('another batch master published meanwhile');
      if (error instanceof CoordinationError && error.context['outcomeUnknown'] === true && (await this.holds(data))) {
        this.logger.warn({ version: manifest.version }, 'the publish transaction was answered late, but applied');
      } else throw error;
    }
    this.logger.info({ version: manifest.version, cuts: manifest.cuts, node: leadership.electionNodePath }, 'published batch version');
  }

  /**
   * Whether `batch/current` holds exactly `data`, after a commit of unknown outcome. A no can be
   * stale (the commit may still be applied), so the caller keeps the version's files then.
   */
  private async holds(data: Buffer): Promise<boolean> {
    const node = await this.session.client.get(this.currentPath).catch(() => null);
    return node !== null && node.data.equals(data);
  }

  watch(listener: (manifest: BatchManifest) => void): () => void {
    let stopped = false;
    const stopping = new AbortController();
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
          await readWithRetries();
        } while (again && !stopped);
      } finally {
        reading = false;
      }
    };
    const readAndWatch = async (client: ZkClient): Promise<void> => {
      const node = await client.get(this.currentPath, () => void read());
      if (node === null) {
        if ((await client.exists(this.currentPath, () => void read())) !== null) again = true;
        return;
      }
      if (node.data.length > 0) deliver(parseBatchManifest(node.data));
    };
    // A timed-out read is retried here; a lost connection or session also when it is back.
    const readWithRetries = (): Promise<void> =>
      retry(() => readAndWatch(this.session.client), { retries: Infinity, signal: stopping.signal, minDelayMs: 200, maxDelayMs: 5_000 }).catch((error: unknown) => {
        if (!stopped) this.logger.warn({ err: error, path: this.currentPath }, 'cannot read the published batch version; retrying after reconnection');
      });
    const unsubscribe = this.session.onEvent((event) => {
      if (event === 'reconnected' || event === 'new-session') void read();
    });
    void read();
    return () => {
      stopped = true;
      stopping.abort();
      unsubscribe();
    };
  }
}
