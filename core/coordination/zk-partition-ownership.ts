import { withTimeout } from '../async/with-timeout.ts';
import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { rendezvousOwner, type OwnershipListener, type PartitionOwnership } from './partition-ownership.ts';
import { isZkError, type ZkClient } from './zk-client.ts';
import type { ZkSession } from './zk-session.ts';

export interface ZkPartitionOwnershipOptions {
  readonly session: ZkSession;
  /** The znode under which the sharing nodes meet, e.g. `<root>/archivers`. */
  readonly path: string;
  readonly nodeId: string;
  readonly partitionCount: () => Promise<number>;
  readonly logger: Logger;
  /** Bound on each ZooKeeper call of the fence (default 2 s). */
  readonly fenceTimeoutMs?: number;
  /** How often the partition count and the locks are looked at again with no event (default 30 s). */
  readonly recheckMs?: number;
}

/**
 * Partition ownership through ZooKeeper:
 * - `<path>/members/<nodeId>`: an ephemeral node per live node that shares the partitions;
 * - partition p is due to the live member that rendezvous hashing picks (every node computes the
 *   same from the same list), so a join or a leave moves about 1/N of the partitions;
 * - `<path>/locks/<p>`: the ephemeral lock of the node that holds p (data: its node id). A due
 *   node takes p only by creating the lock, so p has one holder at a time: a node that is no
 *   longer due gives p up (stops its work, then deletes the lock); a holder that dies, pauses or
 *   is cut off loses the lock when its session expires.
 * Work done under a lock is fenced by `assertOwned`, which asks ZooKeeper whether this session
 * still holds the lock: a node whose session expired while it was paused or cut off fails it,
 * whatever it believed before.
 */
export class ZkPartitionOwnership implements PartitionOwnership {
  private readonly held = new Set<number>();
  private listener: OwnershipListener | undefined;
  private running: Promise<void> = Promise.resolve();
  private queued = 0;
  private rerun = false;
  private closed = false;
  /** The connection is down (session suspended): no lock can be confirmed until it is back. */
  private suspended = false;
  private partitions = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: () => void = () => undefined;

  constructor(private readonly options: ZkPartitionOwnershipOptions) {}

  private get membersDir(): string {
    return `${this.options.path}/members`;
  }

  private lockPath(partition: number): string {
    return `${this.options.path}/locks/${partition}`;
  }

  async start(listener: OwnershipListener): Promise<void> {
    this.listener = listener;
    this.unsubscribe = this.options.session.onEvent((event) => {
      this.suspended = event === 'suspended' || event === 'lost';
      if (event === 'lost') this.schedule(() => this.dropAll('the ZooKeeper session expired'));
      else if (event === 'new-session' || event === 'reconnected') this.schedule();
    });
    // The first pass joins the archivers; a failed pass (ZooKeeper slow to answer a starting
    // node) is retried in a second like any other, instead of failing the node's start.
    this.timer = setInterval(() => this.schedule(), this.options.recheckMs ?? 30_000);
    this.timer.unref();
    this.schedule();
    await this.settled();
  }

  owned(): readonly number[] {
    return [...this.held].sort((a, b) => a - b);
  }

  async assertOwned(partition: number): Promise<void> {
    if (!this.held.has(partition)) {
      throw new CoordinationError(`this node no longer holds the lock of partition ${partition}`, { context: { partition, lock: this.lockPath(partition) } });
    }
    // Refused at once while disconnected rather than after the call's timeout: the answer could
    // only be "not confirmed", and a stop with ZooKeeper gone must not wait for it per segment.
    if (this.suspended) {
      throw new CoordinationError(`cannot confirm the lock of partition ${partition}: disconnected from ZooKeeper`, { retriable: true, context: { partition, lock: this.lockPath(partition) } });
    }
    const client = this.options.session.client;
    const timeoutMs = this.options.fenceTimeoutMs ?? 2_000;
    const stat = await withTimeout(client.exists(this.lockPath(partition)), timeoutMs, `confirming the lock of partition ${partition} with ZooKeeper`);
    if (!this.held.has(partition) || !stat || stat.ephemeralOwner !== client.sessionId) {
      throw new CoordinationError(`this node no longer holds the lock of partition ${partition}`, { context: { partition, lock: this.lockPath(partition) } });
    }
  }

  async holders(): Promise<Map<number, string>> {
    const client = this.options.session.client;
    const dir = `${this.options.path}/locks`;
    const names = await client.getChildren(dir).catch((error: unknown) => {
      if (isZkError(error, 'NONODE')) return [];
      throw error;
    });
    const holders = new Map<number, string>();
    for (const name of names) {
      const node = await client.get(`${dir}/${name}`);
      if (node && /^\d+$/.test(name)) holders.set(Number(name), node.data.toString('utf8'));
    }
    return holders;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe();
    await this.settled();
    const client = this.options.session.client;
    const owned = this.owned();
    for (const partition of owned) {
      this.held.delete(partition);
      await this.listener?.released(partition);
    }
    // Deleting the znodes hands the partitions over now; when it cannot be done (ZooKeeper out of
    // reach), closing the session or its expiry deletes them, as they are ephemeral.
    if (this.suspended) {
      this.options.logger.info({ partitions: owned }, 'disconnected from ZooKeeper: the partition locks go with the session');
      return;
    }
    try {
      for (const partition of owned) await this.deleteOwnLock(client, partition);
      await client.delete(`${this.membersDir}/${this.options.nodeId}`, -1);
    } catch (error) {
      this.options.logger.warn({ err: error, partitions: owned }, 'cannot remove this node\'s partition locks and membership now; they go with its session');
    }
  }

  /** Waits for the rebalancing in progress (and the ones asked for meanwhile). */
  private async settled(): Promise<void> {
    while (this.queued > 0) await this.running;
  }

  /**
   * Runs `first` (if given) and then a rebalance, after the ones before: one at a time. Asked
   * for while one is queued, a rebalance only makes the queued one run again.
   */
  private schedule(first?: () => Promise<void>): void {
    if (this.closed) return;
    if (this.queued > 0 && !first) {
      this.rerun = true;
      return;
    }
    this.queued++;
    this.running = this.running.then(async () => {
      try {
        if (first) await first();
        do {
          this.rerun = false;
          await this.rebalance();
        } while (this.rerun && !this.closed);
      } catch (error) {
        this.options.logger.warn({ err: error, path: this.options.path }, 'partition ownership: rebalancing failed; retrying in a second');
        setTimeout(() => this.schedule(), 1_000).unref();
      } finally {
        this.queued--;
        if (this.rerun && this.queued === 0) this.schedule();
      }
    });
  }

  private async join(client: ZkClient): Promise<void> {
    await client.mkdirp(this.membersDir);
    await client.mkdirp(`${this.options.path}/locks`);
    const path = `${this.membersDir}/${this.options.nodeId}`;
    const existing = await client.exists(path);
    if (existing?.ephemeralOwner === client.sessionId) return;
    // Left by this node's previous session (a restart within the session timeout): ours to replace.
    if (existing) await client.delete(path, -1).catch((error: unknown) => void this.options.logger.debug({ err: error }, 'stale member node already gone'));
    try {
      await client.create(path, Buffer.from(this.options.nodeId), 'ephemeral');
    } catch (error) {
      if (!isZkError(error, 'NODEEXISTS')) throw error;
    }
  }

  /** Gives up what is no longer due here, takes what is due and free, watches the rest. */
  private async rebalance(): Promise<void> {
    if (this.closed) return;
    const client = this.options.session.client;
    if (client.state !== 'connected') return; // the session events schedule another pass
    await this.join(client);
    this.partitions = await this.options.partitionCount().catch((error: unknown) => {
      // Never known yet: fail the pass, which is retried in a second.
      if (this.partitions === 0) throw error;
      this.options.logger.warn({ err: error }, 'cannot read the partition count; using the last one');
      return this.partitions;
    });
    const members = await client.getChildren(this.membersDir, () => this.schedule());
    for (let partition = 0; partition < this.partitions; partition++) {
      const due = rendezvousOwner(members, partition) === this.options.nodeId;
      if (this.held.has(partition) && !due) {
        this.held.delete(partition);
        this.options.logger.info({ partition, members }, 'handing partition over');
        await this.listener?.released(partition);
        await this.deleteOwnLock(client, partition);
      } else if (!this.held.has(partition) && due) {
        await this.tryTake(client, partition);
      } else if (this.held.has(partition)) {
        const stat = await client.exists(this.lockPath(partition));
        if (stat?.ephemeralOwner !== client.sessionId) await this.drop(partition, 'its lock is gone');
      }
    }
  }

  private async tryTake(client: ZkClient, partition: number): Promise<void> {
    try {
      await client.create(this.lockPath(partition), Buffer.from(this.options.nodeId), 'ephemeral');
    } catch (error) {
      if (!isZkError(error, 'NODEEXISTS')) throw error;
      const stat = await client.exists(this.lockPath(partition), () => this.schedule());
      // Still held by its previous owner (handing it over, or dead until its session expires).
      if (stat?.ephemeralOwner !== client.sessionId) return;
    }
    this.held.add(partition);
    this.options.logger.info({ partition }, 'took partition');
    await this.listener?.acquired(partition);
  }

  private async drop(partition: number, reason: string): Promise<void> {
    this.held.delete(partition);
    this.options.logger.warn({ partition, reason }, 'lost partition');
    await this.listener?.released(partition);
  }

  /** All at once for the fence; then the listener hears of each. */
  private async dropAll(reason: string): Promise<void> {
    const lost = this.owned();
    this.held.clear();
    for (const partition of lost) {
      this.options.logger.warn({ partition, reason }, 'lost partition');
      await this.listener?.released(partition);
    }
  }

  private async deleteOwnLock(client: ZkClient, partition: number): Promise<void> {
    const stat = await client.exists(this.lockPath(partition));
    if (stat?.ephemeralOwner !== client.sessionId) return;
    await client.delete(this.lockPath(partition), stat.version);
  }
}
