import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeExit, type LambdaProcess } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';
import { ClusterRig } from './fixtures/cluster-rig.ts';
import { EventStream } from './fixtures/event-stream.ts';
import { waitForLogLine, waitForOneMaster } from './fixtures/node-status.ts';
import { PublishedVersions } from './fixtures/published-versions.ts';

const SHUTDOWN_TIMEOUT_MS = 5_000;
/** Past the deadline: a process exits by its own timer, and the test process sees the exit. */
const EXIT_MARGIN_MS = 2_000;
/** "At once" after a second signal, on 2 loaded cores: far below the node's 60 s deadline. */
const AT_ONCE_MS = 3_000;

/**
 * Shutdown with a deadline when Kafka and ZooKeeper are gone: nodes with every role, working
 * (archiving, publishing batch versions, consuming), then the ZooKeeper server and the broker are
 * stopped, and the nodes are signalled. SIGTERM: exit (with a code, not by SIGABRT) within
 * node.shutdownTimeout; a second signal during the shutdown: die of it at once.
 */
describe('shutdown of a node whose Kafka and ZooKeeper are gone', () => {
  let rig: ClusterRig;
  let nodes: LambdaProcess[];
  let passed = 0;

  beforeAll(async () => {
    rig = await ClusterRig.start({ name: 'shutdown', shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS });
    const published = await PublishedVersions.watch(await rig.zkClient(), rig.root);
    // node-2 has a long deadline, so that only a second signal can end its shutdown early.
    const patientFile = rig.writeConfig('patient.yaml', { shutdownTimeoutMs: 60_000 });
    nodes = await rig.startNodes([{ nodeId: 'node-1' }, { nodeId: 'node-2', configFile: patientFile }]);
    const stream = await EventStream.start(rig.broker.brokers, rig.topic, rig.partitions);
    await waitForOneMaster(nodes);
    await published.next();
    await waitFor('events to flow for a while', () => stream.rounds >= 10, 30_000, 50);
    await stream.stop();
    published.stop();
    const goneAtMs = Date.now();
    await Promise.all([rig.zookeeper.kill(), rig.broker.stop()]);
    // Both nodes notice (a ZooKeeper disconnect, a Kafka connection error) before they are signalled.
    await Promise.all(nodes.map((n) => waitFor(`${n.nodeId} to log a warning after the servers went away`, () => n.logLines().some((l) => l.time >= goneAtMs && l.level >= 40), 30_000, 100)));
  }, 180_000);

  afterAll(async () => {
    await rig?.stop({ keepDir: passed < 2 });
  });

  it('SIGTERM: exits within node.shutdownTimeout', async () => {
    const node = nodes[0]!;
    const signalledAtMs = Date.now();
    const exit = await node.kill('SIGTERM');
    const tookMs = exit.atMs - signalledAtMs;
    console.log(`shutdown: ${node.nodeId} exited (${describeExit(exit)}) ${tookMs} ms after SIGTERM with Kafka and ZooKeeper gone`);
    expect(exit.signal, node.failure(`exited by ${describeExit(exit)}`).message).toBeNull();
    expect(tookMs, node.failure(`took ${tookMs} ms to exit`).message).toBeLessThanOrEqual(SHUTDOWN_TIMEOUT_MS + EXIT_MARGIN_MS);
    passed++;
  }, 60_000);

  it('SIGTERM, then SIGINT during the shutdown: exits at once', async () => {
    const node = nodes[1]!;
    const signalledAtMs = Date.now();
    void node.kill('SIGTERM');
    await waitForLogLine(node, 'shutting down', signalledAtMs, 10_000);
    expect(node.alive, 'still shutting down when the second signal comes (its deadline is 60 s)').toBe(true);
    const secondAtMs = Date.now();
    const exit = await node.kill('SIGINT');
    const tookMs = exit.atMs - secondAtMs;
    console.log(`shutdown: ${node.nodeId} exited (${describeExit(exit)}) ${tookMs} ms after the second signal`);
    // It dies of the second signal, as a process with no handler would: no teardown of threads
    // that may be busy in native code (which could abort it instead).
    expect(exit.signal, node.failure(`exited by ${describeExit(exit)}`).message).toBe('SIGINT');
    expect(tookMs, node.failure(`took ${tookMs} ms to exit after the second signal`).message).toBeLessThanOrEqual(AT_ONCE_MS);
    passed++;
  }, 60_000);
});
