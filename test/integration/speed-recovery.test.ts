import type { Kafka, Producer } from 'kafkajs';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import type { SpeedLayerStatus } from '../../speed-layer/index.ts';
import { generateRecords, referenceViews } from '../support/foundation-events.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { endOffsets, goodEvents, produceRecords, testKafka, waitFor, type ProducedRecord } from './fixtures/speed-kafka.ts';

const NODE = fileURLToPath(new URL('./fixtures/speed-node.ts', import.meta.url));
const PARTITIONS = 4;
const BLOCK_SIZE = 100;

/** A speed-layer child process (fixtures/speed-node.ts), driven over stdin/stdout. */
class SpeedNode {
  private readonly replies: ((line: string) => void)[] = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly lines: Interface,
  ) {
    lines.on('line', (line) => this.replies.shift()?.(line));
  }

  static async start(options: Record<string, unknown>): Promise<SpeedNode> {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE, JSON.stringify(options)], { stdio: ['pipe', 'pipe', 'inherit'] });
    const node = new SpeedNode(child, createInterface({ input: child.stdout! }));
    const ready = await node.next(30_000);
    expect(JSON.parse(ready)).toEqual({ ready: true });
    return node;
  }

  private next(timeoutMs = 10_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the speed node did not answer')), timeoutMs);
      this.replies.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  async request<T>(command: 'status' | 'views'): Promise<T> {
    const reply = this.next();
    this.child.stdin!.write(`${command}\n`);
    return JSON.parse(await reply) as T;
  }

  async kill(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
    this.lines.close();
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    await Promise.race([exited, sleep(5_000).then(() => this.child.kill('SIGKILL'))]);
    this.lines.close();
  }
}

describe('Speed layer recovery after SIGKILL', () => {
  let broker: KafkaTestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let dir: string;
  const nodes: SpeedNode[] = [];

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 1 });
    kafka = testKafka(broker.brokers);
    producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    dir = mkdtempSync(join(tmpdir(), 'speed-recovery-'));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await producer?.disconnect();
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Produces `rounds` rounds of records in the background, as a live topic would get them, while
   * `during` kills a node mid-stream and starts another; then checks the last node's views against
   * a plain reduction over everything produced.
   */
  async function killAndRecover(topic: string, options: Record<string, unknown>, produced: ProducedRecord[], seed: number): Promise<void> {
    let producing = true;
    const background = (async () => {
      for (let round = 0; producing && round < 30; round++) {
        produced.push(...(await produceRecords(producer, topic, PARTITIONS, generateRecords(200, { seed: seed + round, badEvery: 20, startIndex: 10_000 * seed + 200 * round }))));
        await sleep(100);
      }
    })();
    const base = { brokers: broker.brokers, topic, interval: '100ms', blockSize: BLOCK_SIZE, ...options };

    const first = await SpeedNode.start(base);
    nodes.push(first);
    const committed = async () => (await first.request<SpeedLayerStatus>('status')).partitions.reduce((sum, p) => sum + p.committedOffset, 0);
    const startedAt = await committed();
    await waitFor('the first node to commit some micro-batches', async () => (await committed()) > startedAt + 300);
    await first.kill();

    const second = await SpeedNode.start(base);
    nodes.push(second);
    producing = false;
    await background;
    const ends = await endOffsets(kafka, topic);
    await waitFor('the restarted node to catch up', async () => {
      const status = await second.request<SpeedLayerStatus>('status');
      return [...ends].every(([p, end]) => (status.partitions.find((s) => s.partition === p)?.committedOffset ?? 0) >= end);
    });
    expect(await second.request('views')).toEqual(referenceViews(goodEvents(produced)));
    await second.close();
  }

  it('rebuilds realtime state by replay from the beginning when there is no batch version', async () => {
    const topic = randomTopicName('speed-recovery');
    await broker.createTopic(topic, PARTITIONS);
    const produced = await produceRecords(producer, topic, PARTITIONS, generateRecords(1_000, { seed: 1, badEvery: 20 }));
    await killAndRecover(topic, {}, produced, 2);
  });

  it('rebuilds realtime state by replay from the cuts of the current batch version', async () => {
    const topic = randomTopicName('speed-recovery-cut');
    await broker.createTopic(topic, PARTITIONS);
    const produced = await produceRecords(producer, topic, PARTITIONS, generateRecords(2_000, { seed: 3, badEvery: 20 }));
    // Cuts at different block boundaries per partition; the batch tables hold exactly the good
    // events below them, computed here from what was produced.
    const cuts = new Map([...Array(PARTITIONS).keys()].map((p) => [p, BLOCK_SIZE * (1 + p)]));
    const now = new Date().toISOString();
    const manifest: BatchManifest = {
      version: 7,
      topic,
      cuts: Object.fromEntries([...cuts].map(([p, cut]) => [String(p), cut])),
      blockSize: BLOCK_SIZE,
      location: dir,
      views: {},
      eventsRead: 0,
      startedAt: now,
      finishedAt: now,
      durationMs: 0,
      producedBy: 'test',
    };
    const manifestFile = join(dir, `${topic}-manifest.json`);
    const batchEventsFile = join(dir, `${topic}-events.json`);
    writeFileSync(manifestFile, JSON.stringify(manifest));
    writeFileSync(batchEventsFile, JSON.stringify(goodEvents(produced.filter((p) => p.offset < cuts.get(p.partition)!))));
    await killAndRecover(topic, { manifestFile, batchEventsFile }, produced, 4);
  });
});
