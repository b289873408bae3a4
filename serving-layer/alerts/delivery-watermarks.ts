import { isZkError, type ZkClient } from '../../core/coordination/zk-client.ts';

/**
 * How far a sink has been delivered: the last notification it acknowledged. `seq` only means
 * something in the store `storeId` names; another node finds its own position by `id` (the same
 * transition evaluated at the same moment has the same id), or failing that by `atMs`.
 */
export interface DeliveryPosition {
  readonly storeId: string;
  readonly seq: number;
  readonly id: string;
  readonly atMs: number;
}

/** Where delivery positions are kept: the local store (single node) or ZooKeeper (cluster). */
export interface DeliveryWatermarks {
  read(sinkId: string): Promise<DeliveryPosition | null>;
  write(sinkId: string, position: DeliveryPosition): Promise<void>;
}

export function parsePosition(text: string): DeliveryPosition | null {
  try {
    const value = JSON.parse(text) as Partial<DeliveryPosition>;
    if (typeof value.storeId !== 'string' || typeof value.seq !== 'number' || typeof value.id !== 'string' || typeof value.atMs !== 'number') return null;
    return { storeId: value.storeId, seq: value.seq, id: value.id, atMs: value.atMs };
  } catch {
    return null; // not JSON: no position, like a malformed one above; the caller decides what a missing position means
  }
}

/**
 * Delivery positions in ZooKeeper, one node per sink under `<root>/alerts/delivered/`, shared by
 * every node of the cluster so that a new notifier resumes where the last one stopped.
 */
export class ZkDeliveryWatermarks implements DeliveryWatermarks {
  /** `zk` is read at each call, so that a process can carry on with a new session after expiry. */
  constructor(
    private readonly zk: () => ZkClient,
    private readonly dir: string,
  ) {}

  static pathFor(root: string): string {
    return `${root.replace(/\/$/, '')}/alerts/delivered`;
  }

  async read(sinkId: string): Promise<DeliveryPosition | null> {
    const node = await this.zk().get(`${this.dir}/${sinkId}`);
    return node ? parsePosition(node.data.toString('utf8')) : null;
  }

  async write(sinkId: string, position: DeliveryPosition): Promise<void> {
    const path = `${this.dir}/${sinkId}`;
    const data = Buffer.from(JSON.stringify(position));
    const zk = this.zk();
    try {
      await zk.set(path, data, -1);
    } catch (error) {
      if (!isZkError(error, 'NONODE')) throw error;
      await zk.mkdirp(this.dir);
      try {
        await zk.create(path, data, 'persistent');
      } catch (raced) {
        if (!isZkError(raced, 'NODEEXISTS')) throw raced;
        await zk.set(path, data, -1);
      }
    }
  }
}
