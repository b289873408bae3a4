import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import { Kafka, logLevel } from 'kafkajs';
import { parse as parseYaml } from 'yaml';
import { validateConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import { batchTable, realtimeTable } from '../../core/views/view-tables.ts';
import type { NotificationPayload } from '../../serving-layer/alerts/alert-record.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { freePort, KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { percentile, printBenchLine } from './bench-report.ts';

/**
 * `npm run bench -- alerts`, on the views of test/fixtures/foundation.yaml (page_traffic: 1-minute
 * buckets over (page, country), five measures including a distinct-count sketch):
 *
 *   evaluation   one micro-batch's evaluation of a rule with 10k instances (100 pages × 100
 *                countries), a 5-minute window (avg_latency > 500, clear < 400) over 55 minutes of
 *                batch state and 5 minutes of realtime blocks at 20k events/s, each evaluation after
 *                a 5k-event micro-batch (250 ms at 20k events/s) folded into the alert window cache:
 *                p50/p99 with 1% of the instances alerting, with all of them firing, the one
 *                evaluation where all 10k fire at once, the fold itself (in the speed layer's
 *                commit path: one INSERT), the cache's first build, and, for comparison, p50
 *                without the cache (reading batch__ ⊎ realtime__ directly). The evaluation figures
 *                include the cache compactions the evaluator runs between evaluations.
 *   latency      produce → webhook: the speed layer at 250 ms micro-batches on the test broker
 *                under 20k events/s of background load, wired as the node wires it
 *                (Alerting.realtimeListener: fold in the transaction, evaluation after each commit),
 *                a probe event every 50 ms that makes a new instance fire; p50/p99 from the
 *                probe's produce call to its notification reaching a local HTTP receiver.
 *
 * Baselines are the targets (50 ms per evaluation, p99 < 1 s), so a ratio under 1 meets
 * the target. ALERTS_BENCH_ONLY=evaluation|latency selects one.
 */
const ONLY = process.env.ALERTS_BENCH_ONLY;
const MINUTE = 60_000;
const logger = createLogger('bench', { level: process.env.ALERTS_BENCH_LOG_LEVEL ?? 'warn' });



function foundationConfig(alerts: Record<string, unknown>, change: (raw: Record<string, any>) => void = () => undefined): LoadedConfig {
  const raw = parseYaml(readFileSync(new URL('../fixtures/foundation.yaml', import.meta.url), 'utf8')) as Record<string, any>;
  delete raw.zookeeper;
  delete raw.source.kafka;
  raw.alerts = alerts;
  change(raw);
  return validateConfig(raw);
}

/**
 * `count` events over 10k (page, country) keys spread over 32 partitions (offsets per partition),
 * evenly over [fromMs, fromMs + spanMs); `firstIndex` continues a previous call's sequence.
 */
function eventsSql(count: number, firstIndex: number, fromMs: number, spanMs: number, hotKeys: number): string {
  const key = '(hash(j) % 10000)';
  return `SELECT make_timestamp(((${fromMs} + (i * ${spanMs}) // ${count}) * 1000)::BIGINT) AS ts,
      'u' || (j * 31 % 10000) AS user_id, '/page/' || (${key} % 100) AS page, 'C' || lpad((${key} // 100)::VARCHAR, 2, '0') AS country,
      CASE WHEN ${key} < ${hotKeys} THEN 900.0 ELSE 100.0 + (j % 201) END AS latency_ms, (j % 400) / 4 AS amount,
      (j % 32)::INTEGER AS _partition, (j // 32)::BIGINT AS _offset
    FROM (SELECT i, ${firstIndex} + i AS j FROM range(${count}) t(i))`;
}

const PER_SECOND = 20_000;
const MICRO_BATCH_EVENTS = PER_SECOND / 4;
const BLOCKS = [{ name: '_partition' }, { name: '_block', sql: '_offset // 10000' }];

/**
 * 55 minutes of batch state and 5 minutes of realtime blocks at 20k events/s (6M events; keys
 * repeat little within a partition's 10k-offset block, so about 4M rows), as the tables hold them
 * between two batch runs.
 */
async function loadHistory(db: ServingDatabase, startMs: number, hotKeys: number): Promise<number> {
  const c = db.adminConnection;
  const view = db.view('page_traffic')!.view;
  await c.run(`CREATE OR REPLACE TEMP TABLE history AS ${eventsSql(5_500_000, 0, startMs, 55 * MINUTE, hotKeys)}`);
  await c.run(`INSERT INTO ${quoteIdent(batchTable('page_traffic'))} BY NAME ${view.partialSql('history')}`);
  const realtimeEvents = 5 * 60 * PER_SECOND;
  await c.run(`CREATE OR REPLACE TEMP TABLE history AS ${eventsSql(realtimeEvents, 5_500_000, startMs + 55 * MINUTE, 5 * MINUTE, hotKeys)}`);
  await c.run(`INSERT INTO ${quoteIdent(realtimeTable('page_traffic'))} BY NAME ${view.partialSql('history', BLOCKS)}`);
  await c.run('DROP TABLE history');
  const [[rows]] = (await c.runAndReadAll(`SELECT count(*)::DOUBLE FROM ${quoteIdent(realtimeTable('page_traffic'))}`)).getRowsJS() as [[number]];
  process.stderr.write(`history: 550k batch rows, ${rows} realtime rows\n`);
  return 5_500_000 + realtimeEvents;
}

interface RunFigures {
  readonly evaluateMs: number[];
  readonly foldMs: number[];
  readonly firstEvaluateMs: number;
  readonly rebuildMs: number | undefined;
}

/** Micro-batches of 5k events (250 ms at 20k/s), each followed by the hook (if `incremental`) and an evaluation. */
async function evaluationRun(rule: Record<string, unknown>, hotKeys: number, incremental: boolean, iterations: number): Promise<RunFigures> {
  const loaded = foundationConfig({ rule: { view: 'page_traffic', window: '5 minutes', ...rule, notify: [{ log: false }] } });
  const db = await ServingDatabase.create(loaded);
  const startMs = Math.floor(Date.now() / MINUTE) * MINUTE - 60 * MINUTE;
  let index = await loadHistory(db, startMs, hotKeys);
  const alerting = await Alerting.start({ loaded, database: db, storageDir: ':memory:', logger });
  const c = db.adminConnection;
  const view = db.view('page_traffic')!.view;
  try {
    let rebuildMs: number | undefined;
    if (incremental) {
      const t = performance.now();
      await alerting.afterMicroBatch(c, undefined); // the first hook call builds the window cache
      rebuildMs = performance.now() - t;
    }
    const evaluateMs: number[] = [];
    const foldMs: number[] = [];
    let eventMs = startMs + 60 * MINUTE;
    for (let i = 0; i < iterations; i++) {
      await c.run(`CREATE OR REPLACE TEMP TABLE micro AS ${eventsSql(MICRO_BATCH_EVENTS, index, eventMs, 250, hotKeys)}`);
      await c.run(`INSERT INTO ${quoteIdent(realtimeTable('page_traffic'))} BY NAME ${view.partialSql('micro', BLOCKS)}`);
      index += MICRO_BATCH_EVENTS;
      eventMs += 250;
      if (incremental) {
        const t = performance.now();
        await alerting.afterMicroBatch(c, 'micro');
        foldMs.push(performance.now() - t);
      }
      const t = performance.now();
      await alerting.evaluate(eventMs + 500);
      evaluateMs.push(performance.now() - t);
    }
    process.stderr.write(`${JSON.stringify(rule)} (${incremental ? 'window cache' : 'full scan'}): ${JSON.stringify((await alerting.api()).rules[0]!.counts)}\n`);
    return { evaluateMs: evaluateMs.slice(1), foldMs, firstEvaluateMs: evaluateMs[0]!, rebuildMs };
  } finally {
    await alerting.close();
    db.close();
  }
}

async function evaluationBench(): Promise<void> {
  const target = { unit: 'ms', baseline: 'issue target per micro-batch', baselineValue: 50 };
  const hot = { condition: 'avg_latency > 500', clear: 'avg_latency < 400' };
  const some = await evaluationRun(hot, 100, true, 121);
  printBenchLine({ bench: 'alerts.evaluation_10k.p50', value: percentile(some.evaluateMs, 50), ...target });
  printBenchLine({ bench: 'alerts.evaluation_10k.p99', value: percentile(some.evaluateMs, 99), ...target });
  printBenchLine({ bench: 'alerts.fold_micro_batch.p50', value: percentile(some.foldMs, 50), ...target });
  printBenchLine({ bench: 'alerts.fold_micro_batch.p99', value: percentile(some.foldMs, 99), ...target });
  printBenchLine({ bench: 'alerts.window_cache_build', value: some.rebuildMs!, unit: 'ms', baseline: 'one micro-batch interval', baselineValue: 250 });
  const all = await evaluationRun({ condition: 'avg_latency > 50' }, 0, true, 61);
  printBenchLine({ bench: 'alerts.evaluation_10k_all_firing.p50', value: percentile(all.evaluateMs, 50), ...target });
  printBenchLine({ bench: 'alerts.evaluation_10k_all_firing.p99', value: percentile(all.evaluateMs, 99), ...target });
  printBenchLine({ bench: 'alerts.evaluation_10k_fire_at_once', value: all.firstEvaluateMs, ...target });
  const scan = await evaluationRun(hot, 100, false, 21);
  printBenchLine({ bench: 'alerts.evaluation_10k_without_cache.p50', value: percentile(scan.evaluateMs, 50), ...target });
}

async function latencyBench(): Promise<void> {
  const PARTITIONS = 8;
  const RATE = 20_000;
  const SECONDS = 20;
  const PROBE_EVERY_MS = 50;
  const broker = await KafkaTestBroker.start({ brokers: 1 });
  const topic = randomTopicName('bench-alerts');
  await broker.createTopic(topic, PARTITIONS);
  const dir = mkdtempSync(join(tmpdir(), 'alerts-bench-'));
  const port = await freePort();
  const receivedAt = new Map<string, number>();
  const receiver = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const payload = JSON.parse(body) as NotificationPayload;
      if (payload.state === 'firing' && !payload.reminder) receivedAt.set(String(payload.key.page), Date.now());
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(port, '127.0.0.1', resolve));
  const loaded = foundationConfig(
    { probe: { view: 'page_traffic', window: '2 minutes', condition: 'max_latency > 10000', notify: [{ webhook: `http://127.0.0.1:${port}/hook`, timeout: '2s' }] } },
    (raw) => {
      raw.source.kafka = { brokers: [...broker.brokers], topic };
      raw.speed = { interval: '250ms' };
      raw.storage = { dir };
    },
  );
  const db = await ServingDatabase.create(loaded);
  const speed = await SpeedLayer.create({ loaded, source: new KafkaRecordSource({ brokers: [...broker.brokers], topic }, logger), instance: db.instance, logger });
  const alerting = await Alerting.start({ loaded, database: db, storageDir: dir, logger });
  // What the node wires (cli/node/realtime-serving.ts): fold each micro-batch into the window
  // caches in its transaction, evaluate after each commit without holding the speed layer up,
  // and the clock for what needs no data.
  speed.addListener(alerting.realtimeListener());
  const stopClock = alerting.startClock(1_000);
  let running = true;
  const evaluationMs: number[] = [];
  const watchEvaluations = (async () => {
    let last = alerting.evaluator.lastEvaluation;
    while (running) {
      await sleep(5);
      const now = alerting.evaluator.lastEvaluation;
      if (now && now !== last) evaluationMs.push(now.durationMs);
      last = now;
    }
  })();
  // Baseline: when each probe becomes visible in realtime state (the speed layer's freshness).
  const visibleAt = new Map<string, number>();
  const poller = await db.connect();
  const poll = (async () => {
    while (running) {
      const rows = (await poller.runAndReadAll(`SELECT DISTINCT page FROM ${quoteIdent(realtimeTable('page_traffic'))} WHERE country = 'ZZ'`)).getRowsJS();
      const nowMs = Date.now();
      for (const [page] of rows) if (!visibleAt.has(String(page))) visibleAt.set(String(page), nowMs);
      await sleep(20);
    }
  })();
  const producedAt = new Map<string, number>();
  try {
    await speed.start();
    // Measures the steady state, not the consumer group's join (~3 s on the mock broker, longer
    // on a loaded machine): one warm-up event per partition, visible before the probes start.
    await warmUp(broker.brokers, topic, PARTITIONS, poller);
    // The producers run in their own process, as they would in production, so that producing
    // does not compete with the pipeline for this process's event loop. Times are wall-clock ms.
    await runProducer({ brokers: broker.brokers.join(','), topic, partitions: PARTITIONS, rate: RATE, seconds: SECONDS, probeEveryMs: PROBE_EVERY_MS }, (page, atMs) =>
      producedAt.set(page, atMs),
    );
    const deadline = Date.now() + 30_000;
    while (receivedAt.size < producedAt.size && Date.now() < deadline) await sleep(50);
    if (receivedAt.size < producedAt.size) throw new Error(`only ${receivedAt.size} of ${producedAt.size} probes notified`);
    const latencies = [...producedAt].map(([page, at]) => receivedAt.get(page)! - at);
    const visible = [...producedAt].map(([page, at]) => (visibleAt.get(page) ?? Infinity) - at);
    const target = { unit: 'ms', baseline: 'issue target (p99)', baselineValue: 1_000 };
    printBenchLine({ bench: 'alerts.produce_to_webhook.p50', value: percentile(latencies, 50), ...target });
    printBenchLine({ bench: 'alerts.produce_to_webhook.p99', value: percentile(latencies, 99), ...target });
    for (const p of [50, 99]) {
      printBenchLine({
        bench: `alerts.produce_to_webhook_vs_realtime.p${p}`,
        value: percentile(latencies, p),
        unit: 'ms',
        baseline: `produce → visible in realtime state (speed layer), p${p}`,
        baselineValue: percentile(visible, p),
      });
    }
    printBenchLine({ bench: 'alerts.evaluation_under_load.p99', value: percentile(evaluationMs, 99), unit: 'ms', baseline: 'issue target per micro-batch', baselineValue: 50 });
    process.stderr.write(`latency: ${producedAt.size} probes, ${evaluationMs.length} evaluations, micro-batches ${JSON.stringify(speed.status().microBatches)}\n`);
  } finally {
    running = false;
    stopClock();
    await watchEvaluations;
    await poll;
    poller.closeSync();
    await speed.stop();
    await alerting.close();
    db.close();
    receiver.closeAllConnections();
    receiver.close();
    await broker.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Produces one event per partition and waits until the speed layer shows them all. */
async function warmUp(brokers: readonly string[], topic: string, partitions: number, db: DuckDBConnection): Promise<void> {
  const producer = new Kafka({ clientId: 'alerts-bench-warm-up', brokers: [...brokers], logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  const ts = new Date().toISOString();
  const messages = Array.from({ length: partitions }, (_, partition) => ({
    partition,
    value: JSON.stringify({ ts, user_id: 'warm-up', page: `/warm-up/${partition}`, country: 'WARM', latency_ms: 1, amount: 0 }),
  }));
  await producer.send({ topic, acks: 1, messages });
  await producer.disconnect();
  const deadline = Date.now() + 60_000;
  const sql = `SELECT count(DISTINCT page) FROM ${quoteIdent(realtimeTable('page_traffic'))} WHERE country = 'WARM'`;
  while (Number((await db.runAndReadAll(sql)).getRowsJS()[0]![0]) < partitions) {
    if (Date.now() > deadline) throw new Error('the speed layer did not show the warm-up events within 60 s');
    await sleep(50);
  }
}

interface ProducerSettings {
  readonly brokers: string;
  readonly topic: string;
  readonly partitions: number;
  readonly rate: number;
  readonly seconds: number;
  readonly probeEveryMs: number;
}

/** Runs this file as the producer process; `onProbe` hears each probe's page and send time. */
async function runProducer(settings: ProducerSettings, onProbe: (page: string, atMs: number) => void): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    env: { ...process.env, ALERTS_BENCH_PRODUCER: JSON.stringify(settings) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    const { page, atMs } = JSON.parse(line) as { page: string; atMs: number };
    onProbe(page, atMs);
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the producer process exited with ${code}`);
}

/** 20k background events/s in 10 ms ticks, and a probe (a new page with a huge latency) every 50 ms. */
async function producerMain(settings: ProducerSettings): Promise<void> {
  const kafka = new Kafka({ clientId: 'alerts-bench-producer', brokers: settings.brokers.split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const TICK_MS = 10;
  const perTick = (settings.rate * TICK_MS) / 1000;
  const sends: Promise<unknown>[] = [];
  const startedMs = performance.now();
  let probe = 0;
  for (let tick = 0; tick < (settings.seconds * 1000) / TICK_MS; tick++) {
    const dueMs = startedMs + tick * TICK_MS;
    if (dueMs > performance.now()) await sleep(dueMs - performance.now());
    const ts = new Date().toISOString();
    const messages = Array.from({ length: perTick }, (_, k) => {
      const i = tick * perTick + k;
      const value = JSON.stringify({ ts, user_id: `u${i % 10_000}`, page: `/page/${i % 100}`, country: `C${Math.floor(i / 100) % 100}`, latency_ms: i % 997, amount: 1 });
      return { value, partition: i % settings.partitions };
    });
    sends.push(producer.send({ topic: settings.topic, acks: 1, messages }));
    if ((tick * TICK_MS) % settings.probeEveryMs === 0) {
      const page = `/probe/${probe++}`;
      process.stdout.write(`${JSON.stringify({ page, atMs: Date.now() })}\n`);
      const value = JSON.stringify({ ts, user_id: 'probe', page, country: 'ZZ', latency_ms: 20_000, amount: 0 });
      sends.push(producer.send({ topic: settings.topic, acks: 1, messages: [{ value, partition: probe % settings.partitions }] }));
    }
  }
  await Promise.all(sends);
  await producer.disconnect();
}

const producerSettings = process.env.ALERTS_BENCH_PRODUCER;
if (producerSettings) {
  await producerMain(JSON.parse(producerSettings) as ProducerSettings);
} else {
  if (!ONLY || ONLY === 'evaluation') await evaluationBench();
  if (!ONLY || ONLY === 'latency') await latencyBench();
}
