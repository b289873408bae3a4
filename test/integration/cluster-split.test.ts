import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendezvousOwner } from '../../core/coordination/partition-ownership.ts';
import { LambdaProcess } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';
import { expectClusterExact, type CheckpointReport } from './fixtures/cluster-checks.ts';
import { ClusterRig } from './fixtures/cluster-rig.ts';
import { EventStream } from './fixtures/event-stream.ts';
import { nodeStatus, waitForLogLine, waitForOneMaster } from './fixtures/node-status.ts';
import { PublishedVersions } from './fixtures/published-versions.ts';

/**
 * The README's cluster guide, run as processes: one config file; 2 × `--roles archiver,batch`
 * and 2 × `--roles speed,serving` on one shared storage.dir, batches every 2 s, a ZooKeeper
 * session of 2 s, and a producer sending events (late ones and malformed records among them)
 * the whole time. Each step breaks something; after each, both query nodes answer every view
 * exactly, the master dataset holds every acked offset of every partition exactly once (through
 * the segment chains the batch reads), and at most one batch master ever published at a time.
 * The steps share one cluster: each starts from what the previous one left.
 */
describe.sequential('a split cluster: 2 archiver,batch + 2 speed,serving processes', () => {
  let rig: ClusterRig;
  let stream: EventStream;
  let published: PublishedVersions;
  let archivers: LambdaProcess[];
  let queryNodes: LambdaProcess[];
  const reports: string[] = [];
  let passed = 0;
  const t0 = Date.now();

  beforeAll(async () => {
    rig = await ClusterRig.start({ name: 'split' });
    published = await PublishedVersions.watch(await rig.zkClient(), rig.root);
    const nodes = await rig.startNodes([
      { nodeId: 'arch-1', roles: ['archiver', 'batch'] },
      { nodeId: 'arch-2', roles: ['archiver', 'batch'] },
      { nodeId: 'query-1', roles: ['speed', 'serving'] },
      { nodeId: 'query-2', roles: ['speed', 'serving'] },
    ]);
    archivers = nodes.slice(0, 2);
    queryNodes = nodes.slice(2);
    stream = await EventStream.start(rig.broker.brokers, rig.topic, rig.partitions);
    reports.push(`started in ${Date.now() - t0} ms`);
  }, 120_000);

  afterAll(async () => {
    published?.stop();
    await stream?.stop().catch(() => undefined);
    console.log(`cluster split, ${Math.round((Date.now() - t0) / 1000)} s:\n  ${reports.join('\n  ')}`);
    await rig?.stop({ keepDir: passed < 7 });
  });

  const checkpoint = async (step: string): Promise<CheckpointReport> => {
    const startedAtMs = Date.now();
    const report = await expectClusterExact({ layout: rig.layout, topic: rig.topic, stream, published, queryNodes, processes: rig.processes });
    reports.push(
      `${step}: exact at ${report.events} events, version ${report.version}, ${report.terms} master terms, ` +
        `${report.overlappingRawRows} rows repeated in overlapping raw files (checked in ${Date.now() - startedAtMs} ms)`,
    );
    return report;
  };

  /**
   * Waits until the partitions have settled on the live archivers `holders` as the spec assigns
   * them (each to the one with the highest rendezvous hash), each held once, as a query node's
   * /v1/status lists them. The README's node ids (arch-1, arch-2) split the 4 partitions 2-2 when both archivers live.
   */
  const waitPartitionsHeld = async (holders: readonly LambdaProcess[]): Promise<string> => {
    const ids = holders.map((h) => h.nodeId);
    const expected = JSON.stringify(ids.map((id) => [id, [0, 1, 2, 3].filter((p) => rendezvousOwner(ids, p) === id)]));
    let held = '';
    await waitFor(
      () => `partitions held as ${expected} (held: ${held})`,
      async () => {
        const status = await nodeStatus(queryNodes.find((q) => q.alive)!).catch(() => undefined);
        if (!status) return false;
        const holding = status.members.filter((m) => (m.partitions ?? []).length > 0);
        held = JSON.stringify(holding.map((m) => [m.id, m.partitions]));
        return JSON.stringify(ids.map((id) => [id, holding.find((m) => m.id === id)?.partitions ?? []])) === expected && holding.length === ids.length;
      },
      30_000,
      100,
    );
    return held;
  };

  const other = (node: LambdaProcess) => archivers.find((a) => a !== node)!;

  /**
   * kill -9 of the batch master: the other archiver is master within the session timeout + 1 s,
   * publishes the next version, holds every partition, and the cluster is exact. Returns the killed one.
   */
  async function killMasterAndWaitTakeover(): Promise<LambdaProcess> {
    const master = await waitForOneMaster(archivers);
    const survivor = other(master);
    const killedAtMs = Date.now();
    await master.kill('SIGKILL');
    const became = await waitForLogLine(survivor, 'became batch master', killedAtMs, 30_000);
    reports.push(`kill -9 ${master.nodeId}: ${survivor.nodeId} master ${became.time - killedAtMs} ms later`);
    expect(became.time - killedAtMs, 'takeover after kill -9 of the master').toBeLessThanOrEqual(rig.sessionTimeoutMs + 1_000);
    expect((await published.next()).producedBy).toBe(survivor.nodeId);
    await waitPartitionsHeld([survivor]);
    await checkpoint(`kill -9 ${master.nodeId}`);
    return master;
  }

  it('starts as the README deploys it: every view exact on both query nodes, one master, partitions split', async () => {
    await waitFor('events to flow for a while', () => stream.rounds >= 20, 30_000, 50);
    await waitForOneMaster(archivers);
    const held = await waitPartitionsHeld(archivers);
    await checkpoint('start');
    reports.push(`partitions held at start: ${held}`);
    const status = await nodeStatus(queryNodes[0]!);
    expect(status.members.map((m) => m.id).sort()).toEqual(['arch-1', 'arch-2', 'query-1', 'query-2']);
    passed++;
  }, 120_000);

  it('kill -9 of the batch master: the other archiver becomes master and archives every partition', async () => {
    await killMasterAndWaitTakeover();
    passed++;
  }, 120_000);

  it('the killed master restarts and rejoins as a follower; partitions are split again', async () => {
    const restarted = archivers.find((a) => !a.alive)!;
    await restarted.restart();
    await waitPartitionsHeld(archivers);
    expect(await waitForOneMaster(archivers)).toBe(other(restarted));
    await checkpoint(`restart ${restarted.nodeId}`);
    passed++;
  }, 120_000);

  it('kill -9 of the other archiver (the master now): the restarted one takes everything over', async () => {
    const master = await killMasterAndWaitTakeover();
    await master.restart();
    await waitPartitionsHeld(archivers);
    passed++;
  }, 150_000);

  it('SIGSTOP of the master past its session, then SIGCONT: it never publishes after its successor took over', async () => {
    const master = await waitForOneMaster(archivers);
    const successor = other(master);
    const pausedAtMs = Date.now();
    master.pause();
    await waitForLogLine(successor, 'became batch master', pausedAtMs, 30_000);
    // The successor publishes while the old master is stopped, so a stale publish would race a real one.
    const next = await published.next();
    expect(next.producedBy).toBe(successor.nodeId);
    await waitPartitionsHeld([successor]);
    await waitFor('twice the session timeout since SIGSTOP', () => Date.now() - pausedAtMs >= 2 * rig.sessionTimeoutMs, 30_000, 50);
    const resumedAtMs = Date.now();
    master.resume();
    await waitForLogLine(master, 'no longer batch master', pausedAtMs, 30_000);
    expect(await waitForOneMaster(archivers)).toBe(successor);
    const stale = master.logLines().filter((l) => l.pid === master.pid && l.time >= pausedAtMs && l.msg === 'batch version published');
    expect(stale, 'versions the stopped master published after SIGCONT').toEqual([]);
    reports.push(`SIGSTOP ${master.nodeId} for ${resumedAtMs - pausedAtMs} ms: ${successor.nodeId} published version ${next.version} meanwhile`);
    await waitPartitionsHeld(archivers);
    await checkpoint(`SIGSTOP/SIGCONT ${master.nodeId}`);
    expect(master.alive).toBe(true);
    passed++;
  }, 150_000);

  it('kill -9 of a query node: the other keeps answering exactly, and the killed one comes back exact', async () => {
    const [killed, kept] = queryNodes as [LambdaProcess, LambdaProcess];
    await killed.kill('SIGKILL');
    await checkpoint(`kill -9 ${killed.nodeId} (${kept.nodeId} answering)`);
    await killed.restart();
    await checkpoint(`restart ${killed.nodeId}`);
    passed++;
  }, 150_000);

  it('a rolling restart of all four, one at a time (SIGTERM, then start again)', async () => {
    for (const node of [...archivers, ...queryNodes]) {
      expect(node.alive, `${node.nodeId} is running before its turn`).toBe(true);
      const signalledAtMs = Date.now();
      await node.restart({ signal: 'SIGTERM' });
      const exit = node.incarnations.at(-2)!.exit!;
      expect(exit, `${node.nodeId} after SIGTERM`).toMatchObject({ code: 0, signal: null });
      expect(exit.atMs - signalledAtMs).toBeLessThanOrEqual(rig.shutdownTimeoutMs + 2_000);
      reports.push(`rolling restart: ${node.nodeId} exited ${exit.atMs - signalledAtMs} ms after SIGTERM, serving again ${Date.now() - exit.atMs} ms later`);
      if (archivers.includes(node)) await waitForOneMaster(archivers);
    }
    await waitPartitionsHeld(archivers);
    await checkpoint('rolling restart');
    passed++;
  }, 240_000);
});
