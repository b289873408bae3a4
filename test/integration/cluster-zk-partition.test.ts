import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy, type LambdaProcess } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';
import { expectClusterExact } from './fixtures/cluster-checks.ts';
import { ClusterRig } from './fixtures/cluster-rig.ts';
import { EventStream } from './fixtures/event-stream.ts';
import { nodeStatus, waitForLogLine, waitForOneMaster } from './fixtures/node-status.ts';
import { expectOnePublisherAtATime, PublishedVersions } from './fixtures/published-versions.ts';

/**
 * The batch master cut off from ZooKeeper while its process keeps running: each of two nodes
 * (default roles) reaches ZooKeeper through a TCP proxy of its own, and the master's proxy is
 * blackholed, as a network partition would be. The master must stop publishing before the server
 * expires its session (it cannot know when that happens), the other node takes over once it
 * has, and when the link is back the old master rejoins as a follower.
 */
describe('the batch master partitioned from ZooKeeper', () => {
  let rig: ClusterRig;
  let stream: EventStream;
  let published: PublishedVersions;
  const proxies = new Map<string, TcpProxy>();
  let nodes: LambdaProcess[];
  let passed = 0;

  beforeAll(async () => {
    rig = await ClusterRig.start({ name: 'zk-cut' });
    published = await PublishedVersions.watch(await rig.zkClient(), rig.root);
    const ids = ['node-1', 'node-2'];
    for (const id of ids) proxies.set(id, await TcpProxy.start({ port: rig.zookeeper.port }));
    nodes = await rig.startNodes(ids.map((nodeId) => ({ nodeId, configFile: rig.writeConfig(`${nodeId}.yaml`, { zookeeperConnect: proxies.get(nodeId)!.address }) })));
    stream = await EventStream.start(rig.broker.brokers, rig.topic, rig.partitions);
  }, 120_000);

  afterAll(async () => {
    published?.stop();
    await stream?.stop().catch(() => undefined);
    await rig?.stop({ keepDir: passed < 1 });
    await Promise.allSettled([...proxies.values()].map((p) => p.stop()));
  });

  it('stops publishing before its session expires on the server; the other node takes over; back, it rejoins as a follower', async () => {
    const master = await waitForOneMaster(nodes);
    const other = nodes.find((n) => n !== master)!;
    await published.next();
    const electionNode = String(master.logLines().filter((l) => l.msg === 'became batch master' && String(l['node']).includes('/election/')).at(-1)!['node']);
    const observer = await rig.zkClient();
    let expiredAtMs: number | undefined;
    await observer.exists(electionNode, () => (expiredAtMs = Date.now()));

    const cutAtMs = Date.now();
    proxies.get(master.nodeId)!.cut('blackhole');
    const stopped = await waitForLogLine(master, 'no longer batch master', cutAtMs, 20_000);
    await waitFor('the server to expire the cut-off session (its election node deleted)', () => expiredAtMs !== undefined, 20_000, 20);
    const became = await waitForLogLine(other, 'became batch master', cutAtMs, 20_000);
    console.log(
      `zk cut: ${master.nodeId} stopped being master ${stopped.time - cutAtMs} ms after the cut, ` +
        `the server expired it after ${expiredAtMs! - cutAtMs} ms, ${other.nodeId} master after ${became.time - cutAtMs} ms`,
    );
    expect(stopped.time, 'the cut-off master stepped down before the server expired its session').toBeLessThan(expiredAtMs!);
    // The observer hears of the deletion when the survivor does, give or take this process's event loop.
    expect(became.time).toBeGreaterThanOrEqual(expiredAtMs! - 500);
    expect(master.alive).toBe(true);
    const next = await published.next();
    expect(next.producedBy).toBe(other.nodeId);
    // Still cut off: the old master answers HTTP, says it is not master, and published nothing since.
    expect((await nodeStatus(master)).isMaster).toBe(false);
    expect(master.logLines().filter((l) => l.pid === master.pid && l.time > stopped.time && l.msg === 'batch version published')).toEqual([]);

    const restoredAtMs = Date.now();
    proxies.get(master.nodeId)!.restore();
    await waitFor(
      `${master.nodeId} to rejoin as a follower, listed by both nodes`,
      async () => {
        const [mine, theirs] = await Promise.all([nodeStatus(master), nodeStatus(other)]).catch(() => [undefined, undefined]);
        if (!mine || !theirs) return false;
        const listed = (s: typeof mine) => s.members.some((m) => m.id === master.nodeId && !m.isMaster) && s.members.some((m) => m.id === other.nodeId && m.isMaster);
        return !mine.isMaster && theirs.isMaster && listed(mine) && listed(theirs);
      },
      30_000,
      100,
    );
    console.log(`zk cut: ${master.nodeId} rejoined as a follower ${Date.now() - restoredAtMs} ms after the link was restored`);
    expect(await waitForOneMaster(nodes)).toBe(other);
    await expectClusterExact({ layout: rig.layout, topic: rig.topic, stream, published, queryNodes: nodes, processes: rig.processes });
    expectOnePublisherAtATime(published.versions, rig.processes);
    passed++;
  }, 180_000);
});
