import { seededRandom } from '../../core/random/seeded-random.ts';
import { DuckDBInstance } from '@duckdb/node-api';
import type { Producer } from 'kafkajs';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recompute } from '../../batch-layer/recompute.ts';
import { loadConfigFile, type LoadedConfig } from '../../core/config/load-config.ts';
import { installSqlMacros } from '../../core/duckdb/sql-macros.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { KafkaRecordSource } from '../../core/source/kafka-record-source.ts';
import { readPartitionChain } from '../../core/storage/segment-chain.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { KafkaTestBroker, randomTopicName } from '../harness/index.ts';
import { expectBatchMatchesReference } from '../support/batch-assertions.ts';
import { expectArchiveHolds, produceClicks, waitFor, type ProducedRecord } from './fixtures/batch-kafka.ts';

const FOUNDATION = fileURLToPath(new URL('../fixtures/foundation.yaml', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/batch-archiver-process.ts', import.meta.url));
const logger = createLogger('batch-archiver-sigkill-test', { level: 'silent' });

async function archivedEnd(layout: StorageLayout, topic: string, partition: number): Promise<number> {
  return (await readPartitionChain(layout, topic, partition)).endOffsetExclusive;
}

const t0 = Date.now();
const mark = (what: string) => process.env.TIMING && console.log(Date.now() - t0, what);

describe('Archiver processes killed with SIGKILL', () => {
  let broker: KafkaTestBroker;
  let loaded: LoadedConfig;
  let producer: Producer;
  let storageDir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    broker = await KafkaTestBroker.start({ brokers: 1 });
    loaded = await loadConfigFile(FOUNDATION);
    producer = new KafkaRecordSource({ brokers: broker.brokers, topic: 'unused' }, logger).client.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    storageDir = mkdtempSync(join(tmpdir(), 'archiver-sigkill-'));
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await producer?.disconnect();
    await broker?.stop();
    rmSync(storageDir, { recursive: true, force: true });
  });

  it('leaves no gap and no record read twice by the batch when SIGKILLed at random moments, repeatedly', async () => {
    const topic = randomTopicName('sigkill');
    const partitions = 3;
    await broker.createTopic(topic, partitions);
    const layout = new StorageLayout(storageDir);
    const random = seededRandom(23);
    const produced: ProducedRecord[] = [];
    let producing = true;
    // Records keep arriving while archivers are killed and restarted.
    const production = (async () => {
      for (let round = 0; producing && round < 400; round++) {
        for (let p = 0; p < partitions; p++) produced.push(...(await produceClicks(producer, topic, p, 20 + Math.floor(random() * 60), random)));
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
    })();

    const spawnArchiver = (run: number): { child: ChildProcess; started: Promise<void>; stopped: Promise<void> } => {
      const settings = {
        brokers: broker.brokers,
        topic,
        storageDir,
        // A fresh group per process: a SIGKILLed member would hold its partitions until its
        // session timeout. Positions come from the files, so the group id does not matter here.
        groupId: `${topic}-archiver-${run}`,
        configFile: FOUNDATION,
        flushMaxRecords: 50 + Math.floor(random() * 250),
        flushIntervalMs: 100,
        // Every other process (the last one included) stages its segments ahead in small groups.
        ...(run % 2 === 1 ? { stageRecords: 40 } : {}),
        compactionIntervalMs: 150,
      };
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      const lines = createInterface({ input: child.stdout! });
      const started = new Promise<void>((resolve) => lines.on('line', (l) => l.includes('"started"') && resolve()));
      const stopped = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      return { child, started, stopped };
    };

    const kills = 5;
    for (let run = 0; run < kills; run++) {
      const { child, started, stopped } = spawnArchiver(run);
      await started;
      mark(`child ${run} started`);
      const before = await Promise.all(Array.from({ length: partitions }, (_, p) => archivedEnd(layout, topic, p)));
      // Kill it once it is writing (some partition moved on), at a random moment after that.
      await waitFor(
        'the archiver to write',
        async () => (await Promise.all(before.map((end, p) => archivedEnd(layout, topic, p).then((now) => now > end)))).some(Boolean),
        15_000,
      );
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 400)));
      child.kill('SIGKILL');
      await stopped;
      mark(`child ${run} killed`);
    }
    producing = false;
    await production;
    const highWatermarks = Array.from({ length: partitions }, (_, p) => Math.max(...produced.filter((r) => r.partition === p).map((r) => r.offset)) + 1);

    const last = spawnArchiver(kills);
    await last.started;
    await waitFor(
      'the last archiver to catch up',
      async () => (await Promise.all(highWatermarks.map((hw, p) => archivedEnd(layout, topic, p).then((end) => end === hw)))).every(Boolean),
      // A deadline, not a speed check: a new process compiles, starts its fetch thread, joins a
      // consumer group and reads the whole backlog, on 2 cores shared with the rest of the suite.
      60_000,
    );
    last.child.kill('SIGKILL');
    await last.stopped;

    mark('caught up');
    for (let p = 0; p < partitions; p++) await expectArchiveHolds(layout, topic, p, produced, { endExclusive: highWatermarks[p]! });

    // The batch reads each (partition, offset) once: its views equal a plain reduction below the cuts.
    const duckdb = await DuckDBInstance.create(':memory:');
    const connection = await duckdb.connect();
    try {
      await installSqlMacros(connection);
      const manifest = await recompute({ connection, layout, topic, schema: loaded.schema, views: loaded.views, blockSize: 100, version: 1, producedBy: 'test' });
      const covered = produced.filter((r) => r.offset < (manifest.cuts[String(r.partition)] ?? 0));
      expect(manifest.eventsRead).toBe(covered.length);
      await expectBatchMatchesReference(connection, storageDir, manifest, loaded.views, covered.flatMap((r) => (r.event ? [r.event] : [])));
    } finally {
      connection.closeSync();
      duckdb.closeSync();
    }
  }, 240_000); // six archiver processes, each starting up and joining a consumer group (~3 s), on a shared machine

});
