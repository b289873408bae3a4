import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendezvousOwner } from '../../core/coordination/partition-ownership.ts';
import { ZkPartitionOwnership } from '../../core/coordination/zk-partition-ownership.ts';
import { ZkSession } from '../../core/coordination/zk-session.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { TcpProxy, waitFor, ZooKeeperTestServer } from '../harness/index.ts';

const PARTITIONS = 12;
const SESSION_TIMEOUT_MS = 2_000;
const logger = createLogger('partition-ownership-test', { level: 'silent' });

/** One node sharing the partitions: its own ZooKeeper session, and what its listener heard. */
interface Node {
  readonly id: string;
  readonly session: ZkSession;
  readonly ownership: ZkPartitionOwnership;
  /** Partitions the listener says this node works on now. */
  readonly working: Set<number>;
  /** While set, `released` waits for it: the node is still winding a partition's work down. */
  gate?: Promise<void>;
}

/**
 * The log of every listener call across nodes, in the order they happened. When nodes join and
 * leave in an orderly way, a partition's work never overlaps: each `acquired` of p follows the
 * `released` of p by its previous worker. (A node whose session expires hears of it only when it
 * reaches ZooKeeper again: there, the fence is what keeps it from writing.)
 */
const timeline: { node: string; partition: number; event: 'acquired' | 'released' }[] = [];

function expectNoOverlap(from = 0): void {
  const workers = new Map<number, string>();
  for (const { node, partition, event } of timeline.slice(from)) {
    if (event === 'acquired') {
      expect(workers.get(partition), `partition ${partition} acquired by ${node} while ${workers.get(partition)} works on it`).toBeUndefined();
      workers.set(partition, node);
    } else {
      expect(workers.get(partition)).toBe(node);
      workers.delete(partition);
    }
  }
}

/** `promise`, or an error naming what did not happen within `ms` (a hang fails with a reason, not the test's timeout). */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('partition ownership through ZooKeeper (rendezvous hashing, one lock per partition)', () => {
  let server: ZooKeeperTestServer;
  const root = `/lambda/ownership-${randomBytes(4).toString('hex')}`;
  const nodes: Node[] = [];

  async function startNode(id: string, connectString = server.connectString, sessionTimeoutMs = SESSION_TIMEOUT_MS): Promise<Node> {
    const session = await ZkSession.open({ connectString, sessionTimeoutMs, logger, reconnectDelayMs: 100 });
    const ownership = new ZkPartitionOwnership({ session, path: `${root}/archivers`, nodeId: id, partitionCount: async () => PARTITIONS, logger, recheckMs: 500 });
    const node: Node = { id, session, ownership, working: new Set() };
    await ownership.start({
      acquired: async (partition) => {
        timeline.push({ node: id, partition, event: 'acquired' });
        node.working.add(partition);
      },
      released: async (partition) => {
        timeline.push({ node: id, partition, event: 'released' });
        await node.gate;
        node.working.delete(partition);
      },
    });
    nodes.push(node);
    return node;
  }

  async function stopNode(node: Node): Promise<void> {
    await node.ownership.close();
    await node.session.close();
    nodes.splice(nodes.indexOf(node), 1);
  }

  /** Every partition worked on by exactly the node rendezvous hashing picks among `live`. */
  async function expectSettledOn(live: readonly Node[], overlapCheckedFrom: number | null = 0): Promise<void> {
    const ids = live.map((n) => n.id);
    const settled = () =>
      Array.from({ length: PARTITIONS }, (_, p) => p).every((p) => {
        const workers = live.filter((n) => n.working.has(p));
        return workers.length === 1 && workers[0]!.id === rendezvousOwner(ids, p);
      });
    const expected = Array.from({ length: PARTITIONS }, (_, p) => [p, rendezvousOwner(ids, p)]);
    let holders: [number, string][] = [];
    // The locks in ZooKeeper must say the same. They are read through each live node in turn: a
    // node whose session just expired may still be opening its new one, and its read fails.
    const locksAgree = async () => {
      for (const node of live) {
        const read = await node.ownership.holders().catch(() => null);
        if (read) {
          holders = [...read].sort(([a], [b]) => a - b);
          return JSON.stringify(holders) === JSON.stringify(expected);
        }
      }
      return false;
    };
    await waitFor(`partitions settled on ${ids.join(', ')}`, async () => settled() && (await locksAgree()), SESSION_TIMEOUT_MS * 5);
    expect(holders).toEqual(expected);
    for (const node of live) expect(node.ownership.owned()).toEqual([...node.working].sort((a, b) => a - b));
    if (overlapCheckedFrom !== null) expectNoOverlap(overlapCheckedFrom);
  }

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
  });

  afterAll(async () => {
    for (const node of [...nodes]) await stopNode(node).catch(() => undefined);
    await server?.stop();
  });

  it('spreads partitions over the live nodes, one holder each, and every node agrees who holds what', async () => {
    await startNode('a');
    await expectSettledOn(nodes);
    await startNode('b');
    await startNode('c');
    await expectSettledOn(nodes);
    // Rendezvous hashing spreads 12 partitions over 3 ids; each gets some.
    for (const node of nodes) expect(node.working.size).toBeGreaterThan(0);
  });

  it('moves only the leaving node\'s partitions to the others when it leaves, and gives a joining node its share', async () => {
    const before = new Map(nodes.map((n) => [n.id, new Set(n.working)]));
    const leaving = nodes.find((n) => n.id === 'b')!;
    await stopNode(leaving);
    await expectSettledOn(nodes);
    for (const node of nodes) for (const p of before.get(node.id)!) expect(node.working.has(p), `${node.id} kept ${p}`).toBe(true);
    await startNode('d');
    await expectSettledOn(nodes);
  });

  it('takes the partitions of a node whose session expired, and fences that node at once', async () => {
    const victim = nodes.find((n) => n.working.size > 0)!;
    const held = [...victim.working];
    const client = victim.session.client;
    for (const p of held) await victim.ownership.assertOwned(p);
    let open!: () => void;
    victim.gate = new Promise<void>((resolve) => (open = resolve));
    const settledFrom = timeline.length;
    await server.expireSession(client.sessionId, client.sessionPassword);
    try {
      await waitFor('the victim to hear its session expired', () => timeline.slice(settledFrom).some((e) => e.node === victim.id && e.event === 'released'));
      // While it winds the partitions' work down (writes in flight), none of them passes the
      // fence, though another node may already hold them.
      for (const p of held) await expect(victim.ownership.assertOwned(p)).rejects.toThrow(/no longer holds the lock/);
    } finally {
      open();
      delete victim.gate;
    }
    // The victim comes back with a new session and takes its share again.
    await expectSettledOn(nodes, null);
    // Once it knew, it let go of each partition before it worked on it again.
    const victimEvents = timeline.slice(settledFrom).filter((e) => e.node === victim.id);
    for (const p of held) expect(victimEvents.filter((e) => e.partition === p).map((e) => e.event)).toEqual(['released', 'acquired']);
  });

  it('refuses the fence for a partition this node never held', async () => {
    const node = nodes[0]!;
    const other = Array.from({ length: PARTITIONS }, (_, p) => p).find((p) => !node.working.has(p))!;
    await expect(node.ownership.assertOwned(other)).rejects.toThrow(/no longer holds the lock/);
  });

  it('refuses the fence at once while disconnected, without asking ZooKeeper, and confirms it again once reconnected', async () => {
    const proxy = await TcpProxy.start({ port: Number(server.connectString.split(':').pop()) });
    // What is under test is the disconnection, not an expiry: a session that outlives a loaded
    // machine's stalls. With 2 s this wait timed out once in CI (every test file at once), most
    // likely the session expiring before the cut; a failure now names the events the session heard.
    const sessionMs = SESSION_TIMEOUT_MS * 3;
    try {
      const node = await startNode('e', proxy.address, sessionMs);
      const events: string[] = [];
      const off = node.session.onEvent((event) => void events.push(event));
      await expectSettledOn(nodes, null);
      const held = [...node.working];
      expect(held.length).toBeGreaterThan(0);
      const heard = events.length;
      proxy.cut('reset');
      // Heard now, or already (a client reconnecting when the link was cut says so only once).
      await waitFor(
        'the node to hear it is disconnected',
        () => events.slice(heard).includes('suspended') || node.session.client.state === 'disconnected',
        sessionMs * 3,
      ).catch((error: unknown) => {
        throw new Error(`${(error as Error).message}; session events: ${events.join(', ') || 'none'} (${heard} before the cut); client ${node.session.client.state}`);
      });
      off();
      // The reason names the disconnection: not a timed-out call, nor a lock found lost.
      for (const p of held) await expect(node.ownership.assertOwned(p)).rejects.toThrow(/disconnected from ZooKeeper/);
      proxy.restore();
      // Back within the session timeout: the same session, the same locks.
      await waitFor('the fence to pass again', async () => {
        try {
          for (const p of held) await node.ownership.assertOwned(p);
          return true;
        } catch {
          return false;
        }
      }, sessionMs * 3);
      await within(sessionMs * 3, 'the node to stop', stopNode(node));
    } finally {
      await proxy.stop();
    }
  });
});
