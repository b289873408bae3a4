import { closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { rendezvousOwner } from '../../core/coordination/partition-ownership.ts';
import { ZkBatchManifestStore } from '../../core/coordination/zk-batch-manifest-store.ts';
import { ZkSession } from '../../core/coordination/zk-session.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { readPartitionChain } from '../../core/storage/segment-chain.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import type { StatusInfo } from '../../serving-layer/http/api-types.ts';
import { KafkaTestBroker, killAll, LambdaProcess, randomTopicName, waitFor, ZooKeeperTestServer, type LogLine } from '../harness/index.ts';
import { percentile, printBenchLine } from './bench-report.ts';

/**
 * `npm run bench -- cluster`: failover of real `lambda start --roles archiver,batch` processes
 * (CLUSTER_BENCH_NODES, default 2) on one shared storage.dir, the test broker (4 partitions, a
 * producer sending CLUSTER_BENCH_RATE events/s the whole time), a real ZooKeeper with a 2 s
 * session, a batch every second. Each of CLUSTER_BENCH_KILLS (default 10) rounds kill -9s the
 * current batch master, which is also an archiver holding its share of the partitions, and
 * measures from the kill (Date.now() just before the signal) to:
 *
 *   takeover      'became batch master' in a survivor's log (pino `time`: the survivor's own clock,
 *                 this machine's);
 *   next_version  'batch version published' in the new master's log (the ZooKeeper watch on
 *                 `<root>/batch/current` is the cross-check, on stderr);
 *   handover      every partition's master dataset (its segment chain's end, polled every 25 ms)
 *                 holding every offset acked to the producer before the kill: the killed node's
 *                 partitions resumed by the survivors. Segments are sealed when their first record
 *                 is 5 s old (the archiver's flush interval), which this figure includes;
 *   handover_read the same for the survivors' read positions (`GET /v1/status` archiver.partitions
 *                 readEndExclusive, polled every 100 ms): the handover without the flush interval.
 *
 * Then the killed node is restarted on its id and port, and the next round waits until it is healthy,
 * another node is master, and each partition's lock is held by its rendezvous owner again. p50 and p99
 * (nearest rank: with 10 kills, the largest) of each; baseline: zookeeper.sessionTimeout, the time the
 * server takes to notice the dead node at all. CLUSTER_BENCH_KEEP=1 keeps the temp dir and node logs.
 */
const KILLS = Number(process.env.CLUSTER_BENCH_KILLS ?? 10);
const NODES = Number(process.env.CLUSTER_BENCH_NODES ?? 2);
const EVENTS_PER_SECOND = Number(process.env.CLUSTER_BENCH_RATE ?? 400);
const KEEP = process.env.CLUSTER_BENCH_KEEP === '1';
/** batch.archiveFlushInterval: the handover's archived time is about the read time plus this. */
const ARCHIVE_FLUSH_INTERVAL = process.env.CLUSTER_BENCH_FLUSH ?? '5s';
const SESSION_TIMEOUT_MS = 2_000;
const PARTITIONS = 4;
const ROUND_TIMEOUT_MS = 45_000;
const logger = createLogger('cluster-bench', { level: 'warn' });

function configYaml(options: { zookeeper: string; root: string; brokers: readonly string[]; topic: string; dir: string }): string {
  return `node: {shutdownTimeout: 5s}
zookeeper: {connect: "${options.zookeeper}", root: ${options.root}, sessionTimeout: ${SESSION_TIMEOUT_MS}ms}
source:
  kafka: {brokers: ${JSON.stringify(options.brokers)}, topic: ${options.topic}}
  timestamp: ts
  schema: {ts: TIMESTAMP, page: VARCHAR, latency_ms: DOUBLE}
storage: {dir: ${JSON.stringify(join(options.dir, 'shared'))}, localDir: ${JSON.stringify(join(options.dir, 'local'))}}
batch: {schedule: "*/1 * * * * *", archiveFlushInterval: ${ARCHIVE_FLUSH_INTERVAL}}
serving: {port: 0}
views:
  page_latency:
    window: 1 minute
    dimensions: [page]
    measures: {views: count(*), avg_latency: avg(latency_ms)}
`;
}

/** Node ids whose rendezvous hashing splits the partitions evenly, so that every kill hands some over. */
function balancedNodeIds(count: number): string[] {
  for (let seed = 0; ; seed++) {
    const ids = Array.from({ length: count }, (_, i) => `archiver-${String.fromCharCode(97 + i)}${seed || ''}`);
    const owned = ids.map((id) => Array.from({ length: PARTITIONS }, (_, p) => p).filter((p) => rendezvousOwner(ids, p) === id).length);
    if (Math.max(...owned) - Math.min(...owned) <= 1) return ids;
  }
}

/** Sends EVENTS_PER_SECOND events over the partitions, one batch every 50 ms, and keeps each partition's acked end. */
class SteadyProducer {
  private readonly acked = Array.from({ length: PARTITIONS }, () => 0);
  private running = true;
  private sent = 0;
  private readonly loop: Promise<void>;

  private constructor(private readonly producer: Producer, private readonly topic: string) {
    this.loop = this.run();
  }

  static async start(brokers: readonly string[], topic: string): Promise<SteadyProducer> {
    const producer = new Kafka({ clientId: 'cluster-bench', brokers: [...brokers], logLevel: logLevel.NOTHING }).producer({ allowAutoTopicCreation: false });
    await producer.connect();
    return new SteadyProducer(producer, topic);
  }

  /** Per partition, the offset below which every record is acked. */
  ackedEnds(): number[] {
    return [...this.acked];
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop.catch(() => undefined);
    await this.producer.disconnect();
  }

  private async run(): Promise<void> {
    const perPartition = Math.max(1, Math.round((EVENTS_PER_SECOND * 0.05) / PARTITIONS));
    while (this.running) {
      const tickAt = Date.now();
      const messages = Array.from({ length: PARTITIONS * perPartition }, (_, i) => {
        const n = this.sent++;
        return { partition: i % PARTITIONS, value: JSON.stringify({ ts: new Date(tickAt).toISOString(), page: `/p${n % 10}`, latency_ms: n % 500 }) };
      });
      try {
        const acks = await this.producer.sendBatch({ acks: -1, topicMessages: [{ topic: this.topic, messages }] });
        for (const ack of acks) this.acked[ack.partition] = Math.max(this.acked[ack.partition]!, Number(ack.baseOffset) + perPartition);
      } catch (error) {
        // Not acked, so not counted: the figures only wait for acked offsets.
        process.stderr.write(`produce failed: ${String(error)}\n`);
      }
      await sleep(Math.max(0, 50 - (Date.now() - tickAt)));
    }
  }
}

/** The pino lines a node writes from now on (its log file read from its current end, whole lines only). */
class LogTail {
  readonly lines: LogLine[] = [];
  private position: number;

  constructor(readonly node: LambdaProcess) {
    this.position = existsSync(node.logFile) ? statSync(node.logFile).size : 0;
  }

  find(msg: string, where: (line: LogLine) => boolean = () => true): LogLine | undefined {
    this.poll();
    return this.lines.find((line) => line.msg === msg && where(line));
  }

  private poll(): void {
    const fd = openSync(this.node.logFile, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.position) return;
      const bytes = Buffer.alloc(size - this.position);
      readSync(fd, bytes, 0, bytes.length, this.position);
      const end = bytes.lastIndexOf(0x0a) + 1;
      this.position += end;
      for (const text of bytes.subarray(0, end).toString('utf8').split('\n')) {
        if (!text.startsWith('{')) continue;
        try {
          this.lines.push(JSON.parse(text) as LogLine);
        } catch {
          // not pino's
        }
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Every version published in `<root>/batch/current`, as this process's watch saw it. */
class PublishedVersions {
  readonly seen: { manifest: BatchManifest; seenAtMs: number }[] = [];

  private constructor(private readonly session: ZkSession, private readonly stopWatch: () => void) {}

  static async watch(connectString: string, root: string): Promise<PublishedVersions> {
    const session = await ZkSession.open({ connectString, sessionTimeoutMs: 10_000, logger });
    let versions: PublishedVersions | undefined;
    const early: PublishedVersions['seen'] = [];
    const stop = new ZkBatchManifestStore(session, root, logger).watch((manifest) => (versions?.seen ?? early).push({ manifest, seenAtMs: Date.now() }));
    versions = new PublishedVersions(session, stop);
    versions.seen.push(...early);
    return versions;
  }

  get latestVersion(): number {
    return this.seen.at(-1)?.manifest.version ?? 0;
  }

  async close(): Promise<void> {
    this.stopWatch();
    await this.session.close();
  }
}

async function status(node: LambdaProcess): Promise<StatusInfo | undefined> {
  return node.alive ? node.getJson<StatusInfo>('/v1/status', 2_000).catch(() => undefined) : undefined;
}

/** The one node whose status says master, once exactly one does (and it is not `notThis`). */
async function soleMaster(nodes: readonly LambdaProcess[], notThis?: LambdaProcess): Promise<LambdaProcess> {
  let master: LambdaProcess | undefined;
  await waitFor('exactly one batch master', async () => {
    const statuses = await Promise.all(nodes.map(status));
    const masters = nodes.filter((_, i) => statuses[i]?.isMaster === true);
    master = masters.length === 1 && masters[0] !== notThis ? masters[0] : undefined;
    return master !== undefined;
  }, ROUND_TIMEOUT_MS, 100);
  return master!;
}

/** Waits until every node is a member and each partition's lock is held by its rendezvous owner among them. */
async function partitionsSettled(nodes: readonly LambdaProcess[]): Promise<void> {
  const ids = nodes.map((n) => n.nodeId);
  let seen = '';
  await waitFor(() => `partitions held by their rendezvous owners among ${ids.join(', ')} (seen: ${seen})`, async () => {
    const members = (await status(nodes[0]!))?.members ?? [];
    seen = JSON.stringify(members.map((m) => [m.id, m.partitions]));
    const holder = (p: number) => members.find((m) => m.partitions.includes(p))?.id;
    return ids.every((id) => members.some((m) => m.id === id)) && Array.from({ length: PARTITIONS }, (_, p) => p).every((p) => holder(p) === rendezvousOwner(ids, p));
  }, ROUND_TIMEOUT_MS, 100);
}

/** Polls `done` every `pollMs` until it holds; resolves with the time it was first seen to hold. */
async function timeWhen(what: string, done: () => boolean | Promise<boolean>, pollMs: number): Promise<number> {
  await waitFor(what, done, ROUND_TIMEOUT_MS, pollMs);
  return Date.now();
}

async function archivedEnds(layout: StorageLayout, topic: string): Promise<number[]> {
  return Promise.all(Array.from({ length: PARTITIONS }, async (_, p) => (await readPartitionChain(layout, topic, p)).endOffsetExclusive));
}

async function readEnds(nodes: readonly LambdaProcess[]): Promise<number[]> {
  const ends = Array.from({ length: PARTITIONS }, () => 0);
  for (const s of await Promise.all(nodes.map(status))) {
    for (const p of s?.archiver?.partitions ?? []) ends[p.partition] = Math.max(ends[p.partition]!, p.readEndExclusive);
  }
  return ends;
}

const covers = (ends: readonly number[], target: readonly number[]) => target.every((end, p) => (ends[p] ?? 0) >= end);

interface Cluster {
  readonly topic: string;
  readonly layout: StorageLayout;
  readonly nodes: readonly LambdaProcess[];
  readonly producer: SteadyProducer;
  readonly versions: PublishedVersions;
}

interface Round {
  readonly takeoverMs: number;
  readonly nextVersionMs: number;
  readonly nextVersionWatchMs: number;
  readonly handoverMs: number;
  readonly handoverReadMs: number;
}

/** One kill -9 of the current master, timed until each of the figures holds, then its restart. */
async function killRound(cluster: Cluster, round: number): Promise<Round> {
  const master = await soleMaster(cluster.nodes);
  const survivors = cluster.nodes.filter((n) => n !== master);
  const tails = survivors.map((n) => new LogTail(n));
  const held = (await status(master))?.archiver?.partitions.map((p) => p.partition) ?? [];
  const producedAtKill = cluster.producer.ackedEnds();
  const versionAtKill = cluster.versions.latestVersion;
  const killedAtMs = Date.now();
  void master.kill('SIGKILL');
  let became: LogLine | undefined;
  let published: LogLine | undefined;
  const [handoverAtMs, handoverReadAtMs] = await Promise.all([
    timeWhen('every partition archived past the kill', async () => covers(await archivedEnds(cluster.layout, cluster.topic), producedAtKill), 25),
    timeWhen('every partition read past the kill', async () => covers(await readEnds(survivors), producedAtKill), 100),
    waitFor('a survivor to log "became batch master"', () => (became = tails.map((t) => t.find('became batch master')).find(Boolean)) !== undefined, ROUND_TIMEOUT_MS, 50),
    waitFor('the new master to log "batch version published"', () => (published = tails.map((t) => t.find('batch version published', (l) => Number(l['version']) > versionAtKill)).find(Boolean)) !== undefined, ROUND_TIMEOUT_MS, 50),
  ]);
  const watched = cluster.versions.seen.find((s) => s.manifest.version > versionAtKill && s.manifest.producedBy !== master.nodeId);
  const result = {
    takeoverMs: became!.time - killedAtMs,
    nextVersionMs: published!.time - killedAtMs,
    nextVersionWatchMs: watched ? watched.seenAtMs - killedAtMs : NaN,
    handoverMs: handoverAtMs - killedAtMs,
    handoverReadMs: handoverReadAtMs - killedAtMs,
  };
  const successor = survivors[tails.findIndex((t) => t.lines.includes(became!))]!;
  const restartedAtMs = Date.now();
  await master.restart();
  await partitionsSettled(cluster.nodes);
  await soleMaster(cluster.nodes, master);
  process.stderr.write(
    `kill ${round + 1}: ${master.nodeId} (partitions ${held.join(',')}) → ${successor.nodeId} master ${result.takeoverMs} ms, ` +
      `version ${published!['version']} published ${result.nextVersionMs} ms (watch ${result.nextVersionWatchMs} ms), ` +
      `archived ${result.handoverMs} ms, read ${result.handoverReadMs} ms; restarted and settled in ${Date.now() - restartedAtMs} ms\n`,
  );
  return result;
}

/** What the bench started, for the cleanup, filled in as it starts. */
interface Started {
  nodes: LambdaProcess[];
  producer?: SteadyProducer;
  versions?: PublishedVersions;
}

async function startCluster(dir: string, zookeeper: ZooKeeperTestServer, broker: KafkaTestBroker, started: Started): Promise<Cluster> {
  const topic = randomTopicName('cluster-bench');
  await broker.createTopic(topic, PARTITIONS);
  const layout = new StorageLayout(join(dir, 'shared'));
  mkdirSync(layout.rootDir, { recursive: true });
  const root = `/lambda/${topic.replaceAll('-', '_')}`;
  const configFile = join(dir, 'lambda.yaml');
  writeFileSync(configFile, configYaml({ zookeeper: zookeeper.connectString, root, brokers: broker.brokers, topic, dir }));
  const versions = (started.versions = await PublishedVersions.watch(zookeeper.connectString, root));
  const producer = (started.producer = await SteadyProducer.start(broker.brokers, topic));
  const startedAtMs = Date.now();
  const nodes = (started.nodes = await Promise.all(balancedNodeIds(NODES).map((nodeId) => LambdaProcess.spawn({ configFile, nodeId, roles: ['archiver', 'batch'] }))));
  await Promise.all(nodes.map((n) => n.waitHealthy()));
  await partitionsSettled(nodes);
  await soleMaster(nodes);
  // Warm: a version published and every partition archiving before the first kill.
  const producedAtStart = producer.ackedEnds();
  await waitFor('a first version and every partition archived', async () => versions.latestVersion > 0 && covers(await archivedEnds(layout, topic), producedAtStart), ROUND_TIMEOUT_MS * 2, 100);
  process.stderr.write(`${NODES} nodes (${nodes.map((n) => n.nodeId).join(', ')}) started and archiving in ${Date.now() - startedAtMs} ms; logs in ${dir}\n`);
  return { topic, layout, nodes, producer, versions };
}

function report(rounds: readonly Round[]): void {
  const baseline = { unit: 'ms', baseline: `zookeeper.sessionTimeout (kill -9 of the master, ${NODES} archiver,batch nodes, ${rounds.length} kills)`, baselineValue: SESSION_TIMEOUT_MS };
  const figures: [string, (r: Round) => number][] = [
    ['takeover', (r) => r.takeoverMs],
    ['next_version', (r) => r.nextVersionMs],
    ['handover', (r) => r.handoverMs],
    ['handover_read', (r) => r.handoverReadMs],
  ];
  for (const [name, of] of figures) {
    for (const p of [50, 99]) printBenchLine({ bench: `cluster.${name}.p${p}`, value: percentile(rounds.map(of), p), ...baseline });
  }
}

const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

async function clusterBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-bench-'));
  const started: Started = { nodes: [] };
  let failed = true;
  let servers: PromiseSettledResult<ZooKeeperTestServer | KafkaTestBroker>[] = [];
  // Interrupted: the harness's exit handlers SIGKILL the processes; this removes the temp dirs.
  const removeDirs = () => {
    if (KEEP) return;
    for (const s of servers) if (s.status === 'fulfilled' && s.value instanceof ZooKeeperTestServer) rmSync(s.value.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  };
  const interrupted = () => process.exit(130);
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted).once('exit', removeDirs);
  process.stderr.write(`load average at start: ${load()}\n`);
  servers = await Promise.allSettled([ZooKeeperTestServer.start(), KafkaTestBroker.start({ brokers: 1 })]);
  try {
    const [zookeeper, broker] = servers.map((s) => {
      if (s.status === 'rejected') throw s.reason;
      return s.value;
    }) as [ZooKeeperTestServer, KafkaTestBroker];
    const cluster = await startCluster(dir, zookeeper, broker, started);
    const rounds: Round[] = [];
    for (let round = 0; round < KILLS; round++) rounds.push(await killRound(cluster, round));
    report(rounds);
    failed = false;
  } finally {
    if (failed) for (const node of started.nodes) process.stderr.write(`--- ${node.nodeId}, last lines of ${node.logFile}:\n${node.logTail(15)}\n`);
    await killAll(started.nodes);
    await Promise.allSettled([started.producer?.stop(), started.versions?.close()]);
    await Promise.allSettled(servers.map((s) => (s.status === 'fulfilled' ? s.value.stop() : undefined)));
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted).off('exit', removeDirs);
    process.stderr.write(`load average at the end: ${load()}${KEEP || failed ? `; ${KEEP ? 'kept' : 'removed'} ${dir}` : ''}\n`);
    if (!KEEP) rmSync(dir, { recursive: true, force: true });
  }
}

await clusterBench();
