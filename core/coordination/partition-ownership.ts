import { createHash } from 'node:crypto';
import { CoordinationError } from '../errors/index.ts';

/** What the owner of partitions is told; each call is awaited before the next one is made. */
export interface OwnershipListener {
  /** The partition is this node's now: start its work. */
  acquired(partition: number): Promise<void>;
  /**
   * The partition is no longer this node's (another node is due to take it, or the session that
   * held its lock is gone): stop its work. Called before the lock is given up, when it still can be.
   */
  released(partition: number): Promise<void>;
}

/**
 * Which live node does the work of each partition (DESIGN.md, "A cluster of processes"): one
 * at a time, with a fence that a paused or cut-off node cannot pass.
 */
export interface PartitionOwnership {
  /** Joins the nodes that share the partitions; the listener hears every change of this node's share. */
  start(listener: OwnershipListener): Promise<void>;
  /** The partitions this node holds now (as far as it knows without asking ZooKeeper). */
  owned(): readonly number[];
  /**
   * The fence: resolves only while ZooKeeper itself says this node's session holds the
   * partition's lock; rejects otherwise (also when ZooKeeper cannot be asked in time).
   */
  assertOwned(partition: number): Promise<void>;
  /** Every partition held by some node: partition → node id (for status). */
  holders(): Promise<Map<number, string>>;
  /** Gives up every partition (the listener hears `released`) and leaves. */
  close(): Promise<void>;
}

/**
 * Rendezvous (highest random weight) hashing: the node whose hash with the partition is highest
 * owns it. Every node computes the same owner from the same member list, and a member joining or
 * leaving moves only the partitions it wins or held: about 1/N of them.
 */
export function rendezvousOwner(nodeIds: readonly string[], partition: number): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const id of nodeIds) {
    const weight = createHash('sha256').update(`${id}\u0000${partition}`).digest().readBigUInt64BE(0);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = weight;
    }
  }
  return best;
}

/** Single-node mode: the one process owns every partition, and nothing can take one away. */
export class LocalPartitionOwnership implements PartitionOwnership {
  private held: number[] = [];
  private listener: OwnershipListener | undefined;

  constructor(
    private readonly nodeId: string,
    private readonly partitionCount: () => Promise<number>,
  ) {}

  async start(listener: OwnershipListener): Promise<void> {
    this.listener = listener;
    const count = await this.partitionCount();
    for (let p = 0; p < count; p++) {
      this.held.push(p);
      await listener.acquired(p);
    }
  }

  owned(): readonly number[] {
    return this.held;
  }

  /** Nothing else can take a partition from the only node: held is owned. */
  async assertOwned(partition: number): Promise<void> {
    if (!this.held.includes(partition)) throw new CoordinationError(`partition ${partition} is not archived by this node`, { context: { partition } });
  }

  async holders(): Promise<Map<number, string>> {
    return new Map(this.held.map((p) => [p, this.nodeId]));
  }

  async close(): Promise<void> {
    for (const p of this.held.splice(0)) await this.listener?.released(p);
  }
}
