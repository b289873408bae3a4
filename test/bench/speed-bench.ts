import { DuckDBInstance } from '@duckdb/node-api';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parse as parseYaml } from 'yaml';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { validateConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import type { RecordSource, SubscribeOptions } from '../../core/source/record-source.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { percentile, printBenchLine } from './bench-report.ts';
import { cpuMicros, kafkajsBaselineRun, threadCpuMicros, type ConsumeRun } from './kafkajs-baseline.ts';

/**
 * `npm run bench -- speed`: the speed layer on the test broker (librdkafka's mock cluster, one
 * broker) with the two views of test/fixtures/foundation.yaml. Each figure has a baseline
 * measured in the same run on the same topic:
 *
 *   ingest     1M JSON events (~100 B) on 32 partitions; baseline: kafkajs consuming the topic
 *              with JSON.parse of every value and no other work. Three alternating runs each,
 *              medians; also the CPU time per event of the process (all threads), which load
 *              from outside the bench disturbs less than the rate.
 *   freshness  20k events/s for 10 s from a producer process, 250 ms micro-batches: produced (in
 *              the log, acknowledged) → committed to realtime state, where queries see it; p50 and
 *              p99. Baseline: produced → delivered to a plain kafkajs consumer, same rate, same
 *              topic. Latencies from the send call, which add the producer's queueing, on stderr.
 *   memory     RSS after N events (default 10M) over 10k keys, produced while consumed (the broker
 *              keeps ~5 MiB per partition), with a batch version applied every 1M events as the
 *              batch layer would; baseline: RSS before the speed layer started. No serving layer
 *              runs here, so nothing prunes the tail of `events` (EventsTail): by the end it holds
 *              speed.maxEventsTail rows (1M, ~90 MiB), where a node keeps seconds of events.
 *
 * SPEED_BENCH_EVENTS, SPEED_BENCH_MEMORY_EVENTS and SPEED_BENCH_ONLY (ingest|freshness|memory)
 * scale or select the runs; SPEED_BENCH_LOG_LEVEL=debug logs every micro-batch of the ingest runs
 * (records, decode and commit times), to see which stage is the bottleneck, and
 * SPEED_BENCH_PROFILE=<dir> writes a CPU profile of each ingest run's JavaScript thread.
 */
const PARTITIONS = 32;
const INGEST_EVENTS = Number(process.env.SPEED_BENCH_EVENTS ?? 1_000_000);
const MEMORY_EVENTS = Number(process.env.SPEED_BENCH_MEMORY_EVENTS ?? 10_000_000);
const ONLY = process.env.SPEED_BENCH_ONLY;
const BASE_MS = Date.UTC(2026, 0, 1);
const PAGES = Array.from({ length: 100 }, (_, i) => `/page/${i}`);
const COUNTRIES = Array.from({ length: 100 }, (_, i) => `C${String(i).padStart(2, '0')}`);


/** About 100 bytes; 10k (page, country) keys, 10k users, event times over ten 1-minute windows. */
function eventJson(i: number, total: number, tsMs?: number): string {
  return JSON.stringify({
    ts: new Date(tsMs ?? BASE_MS + Math.floor((i / total) * 600_000)).toISOString(),
    user_id: `u${(i * 7919) % 10_000}`,
    page: PAGES[i % 100],
    country: COUNTRIES[Math.floor(i / 100) % 100],
    latency_ms: (i % 997) + 0.5,
    amount: (i % 400) / 4,
  });
}

/**
 * The database the speed layer writes into. SPEED_BENCH_DUCKDB_THREADS (default 1): a
 * micro-batch is one row group, which DuckDB works on with one thread; more threads only add
 * scheduling work (~20% CPU here) on a machine that also runs kafkajs and the broker.
 */
function createDatabase(): Promise<DuckDBInstance> {
  return DuckDBInstance.create(':memory:', { threads: process.env.SPEED_BENCH_DUCKDB_THREADS ?? '1' });
}

function benchConfig(broker: KafkaTestBroker, topic: string, speed: { interval: string; maxBatchRecords: number }): LoadedConfig {
  const raw = parseYaml(readFileSync(new URL('../fixtures/foundation.yaml', import.meta.url), 'utf8')) as Record<string, any>;
  raw.source.kafka = { brokers: [...broker.brokers], topic };
  // SPEED_BENCH_MAX_EVENTS_TAIL: speed.maxEventsTail (0 keeps no tail of `events`), to see what the tail costs.
  const maxEventsTail = process.env.SPEED_BENCH_MAX_EVENTS_TAIL;
  raw.speed = { ...raw.speed, ...speed, ...(maxEventsTail === undefined ? {} : { maxEventsTail: Number(maxEventsTail) }) };
  return validateConfig(raw);
}

async function produce(producer: Producer, topic: string, from: number, to: number, total: number): Promise<void> {
  const CHUNK = 32_000;
  const inFlight: Promise<unknown>[] = [];
  for (let start = from; start < to; start += CHUNK) {
    const byPartition = Array.from({ length: PARTITIONS }, () => [] as { value: string; partition: number }[]);
    for (let i = start; i < Math.min(to, start + CHUNK); i++) byPartition[i % PARTITIONS]!.push({ value: eventJson(i, total), partition: i % PARTITIONS });
    inFlight.push(producer.sendBatch({ acks: 1, topicMessages: byPartition.map((messages) => ({ topic, messages })) }));
    if (inFlight.length >= 3) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

/** The source, noting when its first batch is delivered (the start of a consumption run). */
function timedSource(source: KafkaRecordSource): { source: RecordSource; firstBatchAtMs: () => number | undefined; cpuAtFirst: () => number } {
  let firstAt: number | undefined;
  let cpuAtFirst = 0;
  const wrapped: RecordSource = {
    topic: source.topic,
    partitionCount: () => source.partitionCount(),
    highWatermarks: () => source.highWatermarks(),
    subscribe: (options: SubscribeOptions) =>
      source.subscribe({
        ...options,
        onBatch: (batch) => {
          if (firstAt === undefined) {
            firstAt = performance.now();
            cpuAtFirst = cpuMicros();
          }
          return options.onBatch(batch);
        },
      }),
  };
  return { source: wrapped, firstBatchAtMs: () => firstAt, cpuAtFirst: () => cpuAtFirst };
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function speedRun(broker: KafkaTestBroker, topic: string, events: number, endOffsets: Map<number, number>): Promise<ConsumeRun> {
  const loaded = benchConfig(broker, topic, { interval: '1s', maxBatchRecords: 100_000 });
  const instance = await createDatabase();
  const kafkaSource = new KafkaRecordSource({ brokers: [...broker.brokers], topic }, createLogger('bench', { level: 'warn' }));
  const { source, firstBatchAtMs, cpuAtFirst } = timedSource(kafkaSource);
  const speed = await SpeedLayer.create({ loaded, source, instance, logger: createLogger('bench', { level: process.env.SPEED_BENCH_LOG_LEVEL ?? 'warn' }) });
  const profiling = await startProfile();
  try {
    await speed.start();
    const caughtUp = () => speed.status().partitions.filter((p) => p.committedOffset >= (endOffsets.get(p.partition) ?? 0)).length === endOffsets.size;
    await waitUntil(caughtUp, 300_000, 'the speed layer to catch up');
    const doneAt = performance.now();
    const cpuAtDone = cpuMicros();
    const counted = await totalCount(instance);
    if (counted !== events) throw new Error(`the speed layer counted ${counted} events, not ${events}`);
    return { rate: (events / (doneAt - firstBatchAtMs()!)) * 1000, cpuMicrosPerEvent: (cpuAtDone - cpuAtFirst()) / events };
  } finally {
    await profiling?.stop();
    await speed.stop();
    instance.closeSync();
  }
}

/**
 * SPEED_BENCH_PROFILE=<dir>: a V8 CPU profile of the JavaScript thread during each speed-layer
 * ingest run (not the baseline, not the producing), written there as run-<n>.cpuprofile.
 */
let profileRuns = 0;
async function startProfile(): Promise<{ stop(): Promise<void> } | undefined> {
  const dir = process.env.SPEED_BENCH_PROFILE;
  if (!dir) return undefined;
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<any>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));
  await post('Profiler.enable');
  await post('Profiler.start');
  const threadsBefore = threadCpuMicros();
  return {
    async stop() {
      const byName = new Map<string, number>();
      for (const [tid, { name, micros }] of threadCpuMicros()) {
        const key = tid === String(process.pid) ? 'main' : threadsBefore.has(tid) ? `${name}:${tid}` : `${name}:${tid}(new)`;
        byName.set(key, Math.round((micros - (threadsBefore.get(tid)?.micros ?? 0)) / 1000));
      }
      process.stderr.write(`thread CPU ms: ${[...byName].filter(([, ms]) => ms > 0).map(([n, ms]) => `${n} ${ms}`).join(', ')}\n`);
      const { profile } = await post('Profiler.stop');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `run-${++profileRuns}.cpuprofile`), JSON.stringify(profile));
      session.disconnect();
    },
  };
}

async function totalCount(instance: DuckDBInstance): Promise<number> {
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll('SELECT coalesce(sum(views__count), 0)::DOUBLE FROM realtime__page_traffic');
    return reader.getRows()[0]![0] as number;
  } finally {
    connection.closeSync();
  }
}

async function endOffsetsOf(kafka: Kafka, topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

async function ingestBench(broker: KafkaTestBroker, kafka: Kafka, producer: Producer): Promise<void> {
  const topic = randomTopicName('bench-ingest');
  await broker.createTopic(topic, PARTITIONS);
  const producedAt = performance.now();
  await produce(producer, topic, 0, INGEST_EVENTS, INGEST_EVENTS);
  process.stderr.write(`produced ${INGEST_EVENTS} events in ${((performance.now() - producedAt) / 1000).toFixed(1)} s\n`);
  const endOffsets = await endOffsetsOf(kafka, topic);
  // Runs alternate, so that load from outside the bench hits both alike; medians are reported.
  const baseline: ConsumeRun[] = [];
  const speed: ConsumeRun[] = [];
  for (let run = 0; run < 3; run++) {
    baseline.push(await kafkajsBaselineRun(kafka, topic, INGEST_EVENTS));
    speed.push(await speedRun(broker, topic, INGEST_EVENTS, endOffsets));
    process.stderr.write(
      `ingest run ${run + 1}: baseline ${baseline[run]!.rate.toFixed(0)}/s ${baseline[run]!.cpuMicrosPerEvent.toFixed(2)} µs CPU/event, ` +
        `speed layer ${speed[run]!.rate.toFixed(0)}/s ${speed[run]!.cpuMicrosPerEvent.toFixed(2)} µs CPU/event\n`,
    );
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  printBenchLine({
    bench: 'speed.ingest',
    value: median(speed.map((r) => r.rate)),
    unit: 'events/s',
    baseline: 'kafkajs consume + JSON.parse, same topic',
    baselineValue: median(baseline.map((r) => r.rate)),
  });
  printBenchLine({
    bench: 'speed.ingest.cpu',
    value: median(speed.map((r) => r.cpuMicrosPerEvent)),
    unit: 'µs CPU/event (this process, all threads)',
    baseline: 'kafkajs consume + JSON.parse, same topic',
    baselineValue: median(baseline.map((r) => r.cpuMicrosPerEvent)),
  });
}


const FRESHNESS_RATE = 20_000;
const FRESHNESS_SECONDS = 10;

/**
 * One acknowledged send of the producer process: its records got offsets base..base+count-1,
 * were handed to the client at `sentAtMs` and acknowledged (in the log) at `ackedAtMs`.
 */
interface SentBatch {
  readonly partition: number;
  readonly baseOffset: number;
  readonly count: number;
  readonly sentAtMs: number;
  readonly ackedAtMs: number;
}

/**
 * Produces FRESHNESS_RATE events/s for FRESHNESS_SECONDS from a child process (this file, run
 * with `--producer`), so that the producer neither takes the measured process's event loop nor
 * is delayed by it. Resolves with every send and the wall-clock time it was issued.
 */
function produceAtRate(brokers: readonly string[], topic: string): Promise<SentBatch[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--producer', JSON.stringify({ brokers, topic })], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const sent: SentBatch[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => sent.push(...(JSON.parse(line) as SentBatch[])));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(sent) : reject(new Error(`the producer process exited with ${code}`))));
  });
}

async function producerProcess(options: { brokers: string[]; topic: string }): Promise<void> {
  const kafka = new Kafka({ clientId: 'speed-bench-producer', brokers: options.brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  // One request every 50 ms (1,000 events over the partitions): a steady stream without making
  // the (single-threaded) mock broker spend itself on request overhead.
  const TICK_MS = 50;
  const perTick = (FRESHNESS_RATE * TICK_MS) / 1000;
  const startedMs = Date.now();
  const sends: Promise<void>[] = [];
  const ackLatencies: number[] = [];
  for (let tick = 0; tick < (FRESHNESS_SECONDS * 1000) / TICK_MS; tick++) {
    const dueMs = startedMs + tick * TICK_MS;
    if (dueMs > Date.now()) await sleep(dueMs - Date.now());
    const byPartition = new Map<number, { value: string; partition: number }[]>();
    for (let i = tick * perTick; i < (tick + 1) * perTick; i++) {
      const partition = i % PARTITIONS;
      const list = byPartition.get(partition) ?? [];
      list.push({ value: eventJson(i, 1, Date.now()), partition });
      byPartition.set(partition, list);
    }
    const sentAtMs = Date.now();
    sends.push(
      producer.sendBatch({ acks: 1, topicMessages: [...byPartition.values()].map((messages) => ({ topic: options.topic, messages })) }).then((acks) => {
        const ackedAtMs = Date.now();
        ackLatencies.push(ackedAtMs - sentAtMs);
        const batches: SentBatch[] = acks.map((ack) => ({
          partition: ack.partition,
          baseOffset: Number(ack.baseOffset),
          count: byPartition.get(ack.partition)!.length,
          sentAtMs,
          ackedAtMs,
        }));
        process.stdout.write(`${JSON.stringify(batches)}\n`);
      }),
    );
  }
  await Promise.all(sends);
  await producer.disconnect();
  ackLatencies.sort((a, b) => a - b);
  process.stderr.write(`producer: acked after p50 ${percentile(ackLatencies, 50)} ms, p99 ${percentile(ackLatencies, 99)} ms\n`);
}

/**
 * Latencies of every event, from when it was produced (acknowledged, i.e. in the log; or, with
 * `fromSend`, handed to the producer client) to when `reachedAt` says it was seen.
 */
function latencies(sent: readonly SentBatch[], reachedAt: (partition: number, offset: number) => number, fromSend = false): number[] {
  return sent
    .flatMap((b) => Array.from({ length: b.count }, (_, k) => reachedAt(b.partition, b.baseOffset + k) - (fromSend ? b.sentAtMs : b.ackedAtMs)))
    .sort((a, b) => a - b);
}

/**
 * The mock broker answers a fetch that finds no data only after the consumer's maximum wait,
 * even if data arrives meanwhile; a real broker answers as soon as it arrives. So for the
 * freshness runs the speed layer's consumer gets the wait the baseline consumer gets.
 */
const FETCH_WAIT_MS = 100;

function shortFetchWaitSource(broker: KafkaTestBroker, topic: string, logger: ReturnType<typeof createLogger>): RecordSource {
  const source = new KafkaRecordSource({ brokers: [...broker.brokers], topic }, logger);
  return {
    topic,
    partitionCount: () => source.partitionCount(),
    highWatermarks: () => source.highWatermarks(),
    subscribe: (options) => source.subscribe(options, { maxWaitTimeMs: FETCH_WAIT_MS }),
  };
}

/**
 * Two phases on one topic: first a plain kafkajs consumer alone (the baseline: produce →
 * delivered), then the speed layer alone (produce → visible to a query of realtime state on
 * another connection, polled every 5 ms). Times are wall-clock (Date.now) across processes.
 */
async function freshnessBench(broker: KafkaTestBroker, kafka: Kafka): Promise<void> {
  const topic = randomTopicName('bench-fresh');
  await broker.createTopic(topic, PARTITIONS);

  const delivered = new Map<number, { offset: number; atMs: number }[]>();
  const consumer = kafka.consumer({ groupId: randomTopicName('bench-fresh-baseline'), maxWaitTimeInMs: FETCH_WAIT_MS });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let joined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (joined = true));
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const atMs = Date.now();
      for (const m of batch.messages) JSON.parse(m.value!.toString());
      const list = delivered.get(batch.partition) ?? [];
      list.push({ offset: Number(batch.lastOffset()), atMs });
      delivered.set(batch.partition, list);
    },
  });
  await waitUntil(() => joined, 30_000, 'the baseline consumer to join');
  const baselineSent = await produceAtRate(broker.brokers, topic);
  const baselineEnd = baselineSent.reduce((n, b) => n + b.count, 0);
  await waitUntil(() => [...delivered.values()].reduce((n, l) => n + l.length, 0) > 0 && countDelivered(delivered) >= baselineEnd, 60_000, 'the baseline consumer');
  await consumer.disconnect();
  const deliveredAt = (p: number, o: number) => firstReaching(delivered.get(p) ?? [], (d) => d.offset >= o)?.atMs ?? Number.POSITIVE_INFINITY;
  const baseline = latencies(baselineSent, deliveredAt);
  const baselineFromSend = latencies(baselineSent, deliveredAt, true);

  const loaded = benchConfig(broker, topic, { interval: '250ms', maxBatchRecords: 100_000 });
  const instance = await createDatabase();
  const logger = createLogger('bench', { level: 'warn' });
  const speed = await SpeedLayer.create({ loaded, source: shortFetchWaitSource(broker, topic, logger), instance, logger });
  const visible = new Map<number, { count: number; atMs: number }[]>();
  let sampling = true;
  try {
    await speed.start();
    const total = () => [...visible.values()].reduce((n, samples) => n + (samples.at(-1)?.count ?? 0), 0);
    const sampleLoop = sampleCommitted(speed, visible, () => sampling);
    await waitUntil(() => total() >= baselineEnd, 60_000, 'the speed layer to read the first phase');
    const sent = await produceAtRate(broker.brokers, topic);
    const end = baselineEnd + sent.reduce((n, b) => n + b.count, 0);
    await waitUntil(() => total() >= end, 60_000, 'every event to be visible');
    sampling = false;
    await sampleLoop;
    if ((await totalCount(instance)) !== end) throw new Error('realtime state does not hold every event');
    const visibleAt = (p: number, o: number) => firstReaching(visible.get(p) ?? [], (v) => v.count > o)?.atMs ?? Number.POSITIVE_INFINITY;
    const speedLatencies = latencies(sent, visibleAt);
    const speedFromSend = latencies(sent, visibleAt, true);
    process.stderr.write(
      `freshness from the send call (includes the producer's own queueing): speed layer p50 ${percentile(speedFromSend, 50)} ms, ` +
        `p99 ${percentile(speedFromSend, 99)} ms; baseline p50 ${percentile(baselineFromSend, 50)} ms, p99 ${percentile(baselineFromSend, 99)} ms\n`,
    );
    for (const p of [50, 99]) {
      printBenchLine({
        bench: `speed.freshness.p${p}`,
        value: percentile(speedLatencies, p),
        unit: 'ms',
        baseline: `in the log (acked) → delivered to a plain kafkajs consumer, p${p}`,
        baselineValue: percentile(baseline, p),
      });
    }
  } finally {
    sampling = false;
    await speed.stop();
    instance.closeSync();
  }
}

/**
 * Samples every 5 ms, per partition, the offset below which events are committed to realtime
 * state: the commit is what makes them visible to queries (status is updated as the commit
 * returns). Every partition starts at offset 0 here.
 */
async function sampleCommitted(speed: SpeedLayer, visible: Map<number, { count: number; atMs: number }[]>, running: () => boolean): Promise<void> {
  while (running()) {
    const atMs = Date.now();
    for (const p of speed.status().partitions) {
      const samples = visible.get(p.partition) ?? [];
      if (samples.at(-1)?.count !== p.committedOffset) samples.push({ count: p.committedOffset, atMs });
      visible.set(p.partition, samples);
    }
    await sleep(5);
  }
}

/** The first sample for which `reached` holds, in samples ordered so that it holds from some index on. */
function firstReaching<T>(samples: readonly T[], reached: (sample: T) => boolean): T | undefined {
  let lo = 0;
  let hi = samples.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (reached(samples[mid]!)) hi = mid;
    else lo = mid + 1;
  }
  return samples[lo];
}

function countDelivered(delivered: Map<number, { offset: number }[]>): number {
  return [...delivered.values()].reduce((n, list) => n + (list.at(-1)?.offset ?? -1) + 1, 0);
}

/** A full garbage collection, so that RSS counts live memory (npm run bench has no --expose-gc). */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

async function memoryBench(broker: KafkaTestBroker, producer: Producer): Promise<void> {
  const topic = randomTopicName('bench-memory');
  await broker.createTopic(topic, PARTITIONS);
  const loaded = benchConfig(broker, topic, { interval: '1s', maxBatchRecords: 100_000 });
  const instance = await createDatabase();
  const logger = createLogger('bench', { level: 'warn' });
  const speed = await SpeedLayer.create({ loaded, source: new KafkaRecordSource({ brokers: [...broker.brokers], topic }, logger), instance, logger });
  const blockSize = loaded.config.speed.blockSize;
  collectGarbage();
  const rssBeforeMb = process.memoryUsage().rss / 2 ** 20;
  const committed = () => speed.status().partitions.reduce((sum, p) => sum + p.committedOffset, 0);
  try {
    await speed.start();
    let version = 0;
    const STEP = 200_000;
    for (let produced = 0; produced < MEMORY_EVENTS; produced += STEP) {
      // The broker keeps ~45k of these events per partition: stay well within that.
      await waitUntil(() => produced - committed() < 400_000, 120_000, 'the speed layer to keep up');
      await produce(producer, topic, produced, Math.min(MEMORY_EVENTS, produced + STEP), MEMORY_EVENTS);
      if (Math.floor((produced + STEP) / 1_000_000) > version) {
        version++;
        await speed.applyBatch(batchManifest(topic, version, speed, blockSize), async () => undefined);
      }
    }
    await waitUntil(() => committed() >= MEMORY_EVENTS, 300_000, 'the speed layer to catch up');
    collectGarbage();
    const rssAfterMb = process.memoryUsage().rss / 2 ** 20;
    const rows = speed.status().realtimeRows;
    const usage = process.memoryUsage();
    const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
    const duckdb = await instance.connect();
    const duckdbMemory = (await duckdb.runAndReadAll('SELECT tag, memory_usage_bytes::DOUBLE FROM duckdb_memory() WHERE memory_usage_bytes > 0')).getRows();
    duckdb.closeSync();
    process.stderr.write(
      `memory: ${MEMORY_EVENTS} events, realtime rows ${JSON.stringify(rows)}; V8 heap ${mib(usage.heapUsed)} MiB, ` +
        `external ${mib(usage.external)} MiB; DuckDB ${duckdbMemory.map(([tag, bytes]) => `${tag} ${mib(bytes as number)} MiB`).join(', ')}\n`,
    );
    printBenchLine({ bench: 'speed.memory.rss', value: rssAfterMb, unit: 'MiB', baseline: 'RSS before the speed layer started', baselineValue: rssBeforeMb });
  } finally {
    await speed.stop();
    instance.closeSync();
  }
}

/** What the batch layer would publish: everything committed so far, rounded down to blocks. */
function batchManifest(topic: string, version: number, speed: SpeedLayer, blockSize: number): BatchManifest {
  const cuts = Object.fromEntries(speed.status().partitions.map((p) => [String(p.partition), Math.floor(p.committedOffset / blockSize) * blockSize]));
  const nowIso = new Date().toISOString();
  return { version, topic, cuts, blockSize, location: '', views: {}, eventsRead: 0, startedAt: nowIso, finishedAt: nowIso, durationMs: 0, producedBy: 'speed-bench' };
}

async function main(): Promise<void> {
  const broker = await KafkaTestBroker.start({ brokers: 1 });
  const kafka = new Kafka({ clientId: 'speed-bench', brokers: [...broker.brokers], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    if (!ONLY || ONLY === 'ingest') await ingestBench(broker, kafka, producer);
    if (!ONLY || ONLY === 'freshness') await freshnessBench(broker, kafka);
    if (!ONLY || ONLY === 'memory') await memoryBench(broker, producer);
  } finally {
    await producer.disconnect();
    await broker.stop();
  }
}

const producerAt = process.argv.indexOf('--producer');
if (producerAt >= 0) await producerProcess(JSON.parse(process.argv[producerAt + 1]!) as { brokers: string[]; topic: string });
else await main();
