import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LambdaProcess } from '../harness/index.ts';
import { expectClusterExact } from './fixtures/cluster-checks.ts';
import { ClusterRig } from './fixtures/cluster-rig.ts';
import { EventStream } from './fixtures/event-stream.ts';
import { nodeStatus, waitForLogLine, waitForOneMaster } from './fixtures/node-status.ts';
import { PublishedVersions } from './fixtures/published-versions.ts';
import { query } from './fixtures/exactness-scenario.ts';
import { waitFor } from '../harness/wait-for.ts';

/** Fires once per country and stays firing (an all-time count); its webhook is never reachable. */
const ALERTS_YAML = `alerts:
  orders_seen:
    view: revenue_by_country
    condition: "orders > 0"
    notify: [{webhook: "http://127.0.0.1:9/unreachable", timeout: 200ms}]
`;

/** What a node's own alert store holds: its history (ids in order) and each firing instance's start. */
async function alertState(node: LambdaProcess): Promise<{ history: string[]; firingSince: Map<string, string> }> {
  const history = (await query(node.url, 'SELECT id FROM alert_history ORDER BY seq')).map(([id]) => String(id));
  const alerts = await node.getJson<{ instances: { key: Record<string, unknown>; state: string; since: string }[] }>('/v1/alerts');
  const firingSince = new Map(alerts.instances.filter((i) => i.state === 'firing').map((i) => [JSON.stringify(i.key), i.since]));
  return { history, firingSince };
}

/**
 * Two `lambda start` processes with the default roles (all of them) on one shared storage.dir,
 * with events flowing: both serve every view exactly, one is batch master, and after kill -9 of
 * the master the other takes over within the session timeout + 1 s and keeps serving exactly.
 */
describe('two nodes with the default roles', () => {
  let rig: ClusterRig;
  let stream: EventStream;
  let published: PublishedVersions;
  let nodes: LambdaProcess[];
  let passed = 0;
  let killed: { node: LambdaProcess; alerts: Awaited<ReturnType<typeof alertState>> } | undefined;

  beforeAll(async () => {
    rig = await ClusterRig.start({ name: 'default-roles', extraYaml: ALERTS_YAML });
    published = await PublishedVersions.watch(await rig.zkClient(), rig.root);
    nodes = await rig.startNodes([{ nodeId: 'node-1' }, { nodeId: 'node-2' }]);
    stream = await EventStream.start(rig.broker.brokers, rig.topic, rig.partitions);
  });

  afterAll(async () => {
    published?.stop();
    await stream?.stop().catch(() => undefined);
    await rig?.stop({ keepDir: passed < 4 });
  });

  const checkpoint = () =>
    expectClusterExact({ layout: rig.layout, topic: rig.topic, stream, published, queryNodes: nodes, processes: rig.processes });

  it('both nodes serve every view exactly; one is batch master, and both list each other', async () => {
    const master = await waitForOneMaster(nodes);
    await published.next();
    await checkpoint();
    for (const node of nodes) {
      const status = await nodeStatus(node);
      expect(status.members.map((m) => m.id).sort()).toEqual(['node-1', 'node-2']);
      expect(status.isMaster).toBe(node === master);
    }
    passed++;
  }, 120_000);

  it('kill -9 of the master: the other is master within the session timeout + 1 s, publishes, and serves exactly', async () => {
    const master = await waitForOneMaster(nodes);
    const survivor = nodes.find((n) => n !== master)!;
    await waitFor('the master to have fired alerts', async () => (await alertState(master)).firingSince.size > 0, 30_000, 200);
    const alerts = await alertState(master);
    const killedAtMs = Date.now();
    await master.kill('SIGKILL');
    killed = { node: master, alerts };
    const became = await waitForLogLine(survivor, 'became batch master', killedAtMs, 20_000);
    const takeoverMs = became.time - killedAtMs;
    expect(takeoverMs, `takeover took ${takeoverMs} ms`).toBeLessThanOrEqual(rig.sessionTimeoutMs + 1_000);
    expect((await nodeStatus(survivor)).isMaster).toBe(true);
    const next = await published.next();
    expect(next.producedBy).toBe(survivor.nodeId);
    await expectClusterExact({ layout: rig.layout, topic: rig.topic, stream, published, queryNodes: [survivor], processes: rig.processes });
    console.log(`default roles: takeover ${takeoverMs} ms after kill -9, next version ${next.version} ${next.mtimeMs - killedAtMs} ms after it`);
    passed++;
  }, 120_000);

  it('a second live node claiming the same node id exits non-zero with an error naming the id', async () => {
    const survivor = nodes.find((n) => n.alive)!;
    const twin = await LambdaProcess.spawn({ configFile: rig.configFile, logDir: rig.dir, logName: 'twin.log', nodeId: survivor.nodeId });
    rig.processes.push(twin);
    const exit = await twin.exited;
    expect(exit.code, twin.failure('exit').message).not.toBe(0);
    expect(exit.code).not.toBeNull();
    expect(twin.logTail()).toContain(survivor.nodeId);
    // The live node is untouched.
    expect(await survivor.health()).toBe(200);
    expect((await nodeStatus(survivor)).isMaster).toBe(true);
    passed++;
  }, 60_000);

  it('the killed node, restarted with its id, finds its alert history and state again in its local dir', async () => {
    expect(killed, 'the kill -9 step ran').toBeDefined();
    const { node, alerts: before } = killed!;
    await node.restart();
    const after = await alertState(node);
    // The same store: its history goes on from where it was (a new store would start over).
    expect(after.history.length).toBeGreaterThanOrEqual(before.history.length);
    expect(after.history.slice(0, before.history.length)).toEqual(before.history);
    // The same state: what fired before the kill is still firing since then, not fired anew.
    for (const [key, since] of before.firingSince) expect(after.firingSince.get(key), `instance ${key}`).toBe(since);
    passed++;
  }, 120_000);
});
