import { seededRandom } from '../../core/random/seeded-random.ts';
import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { LocalLog } from '../../core/source/local-log.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import { mergedViewSql } from '../../core/views/view-tables.ts';
import { MaterializedViews } from '../../serving-layer/engine/materialized-views.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { SpeedLayer } from '../../speed-layer/index.ts';
import { generateRecords, referenceViews, type GeneratedRecord } from '../support/foundation-events.ts';
import { foundationConfig, readFoundationViews, writeBatchTables } from '../support/foundation-views.ts';
import { waitFor } from '../harness/wait-for.ts';

/**
 * The materialized views of test/fixtures/foundation.yaml maintained by a real speed layer (fed by
 * the single-node local log) at its commit points, compared with a plain JavaScript reduction over
 * the generated events and with the views merged on read.
 */
const BLOCK_SIZE = 100;
const logger = createLogger('serving-materialized-test', { level: 'silent' });

function manifest(version: number, cut: number): BatchManifest {
  const now = new Date().toISOString();
  return { version, topic: 'events', cuts: { '0': cut }, blockSize: BLOCK_SIZE, location: '', views: {}, eventsRead: 0, startedAt: now, finishedAt: now, durationMs: 0, producedBy: 'test' };
}

const goodEvents = (records: readonly GeneratedRecord[]) => records.flatMap((r) => (r.event ? [r.event] : []));

describe('materialized views maintained by the speed layer', () => {
  let dir: string;
  let log: LocalLog;
  let db: ServingDatabase;
  let serving: DuckDBConnection;
  let speed: SpeedLayer;
  const loaded = foundationConfig({ topic: 'events', speed: { interval: '100ms', blockSize: BLOCK_SIZE, maxBatchRecords: 300 } });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'serving-materialized-'));
    log = await LocalLog.open(dir, { logger });
    db = await ServingDatabase.create(loaded);
    serving = await db.connect();
    speed = await SpeedLayer.create({ loaded, source: log, instance: db.instance, logger });
    speed.addListener(await MaterializedViews.create(db.adminConnection, db.bound));
    await speed.start();
  });

  afterEach(async () => {
    await speed.stop();
    serving.closeSync();
    db.close();
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function append(records: readonly GeneratedRecord[]): Promise<void> {
    await log.append(records.map((r) => r.value ?? Buffer.alloc(0)));
    await waitFor('the speed layer to catch up', () => speed.status().partitions[0]?.committedOffset === log.endOffset);
  }

  /** Rows in one of the view and its computation merged on read, but not the other. */
  async function differencesFromMergedOnRead(): Promise<number> {
    let differences = 0;
    for (const bound of db.bound) {
      const view = quoteIdent(bound.view.definition.name);
      const merged = mergedViewSql(bound);
      const sql = `SELECT count(*)::DOUBLE FROM ((SELECT * FROM ${view} EXCEPT ALL ${merged}) UNION ALL (${merged} EXCEPT ALL SELECT * FROM ${view}))`;
      differences += (await serving.runAndReadAll(sql)).getRows()[0]![0] as number;
    }
    return differences;
  }

  it('equals a plain reduction over the events through micro-batches with late events and batch handoffs', async () => {
    const random = seededRandom(11);
    const records: GeneratedRecord[] = [];
    let cut = 0;
    for (let round = 0, version = 1; round < 6; round++) {
      const more = generateRecords(300 + Math.floor(random() * 700), { seed: 20 + round, badEvery: 25, startIndex: records.length });
      records.push(...more);
      await append(more);
      expect(await readFoundationViews(serving), `after round ${round}`).toEqual(referenceViews(goodEvents(records)));
      if (round % 2 === 1) {
        cut = Math.max(cut, Math.floor((records.length * (0.5 + random() / 2)) / BLOCK_SIZE) * BLOCK_SIZE);
        const covered = goodEvents(records.slice(0, cut));
        await speed.applyBatch(manifest(version++, cut), (connection) => writeBatchTables(connection, speed.views, covered));
        expect(await readFoundationViews(serving), `after the handoff at ${cut}`).toEqual(referenceViews(goodEvents(records)));
      }
      expect(await differencesFromMergedOnRead()).toBe(0);
    }
    expect(speed.status().batchVersion).toBe(3);
  });

  it('never shows a reader the rows of a handoff half applied', async () => {
    const records = generateRecords(2_000, { seed: 31, badEvery: 25 });
    await append(records);
    const expected = referenceViews(goodEvents(records));
    const total = expected.page_traffic.reduce((sum, row) => sum + (row.views as number), 0);
    const seen = new Set<string>();
    let reads = 0;
    let reading = true;
    const reader = (async () => {
      const connection = await db.connect();
      while (reading) {
        const [row] = (await connection.runAndReadAll('SELECT sum(views)::DOUBLE, count(*)::DOUBLE FROM page_traffic')).getRows();
        seen.add(JSON.stringify(row));
        reads++;
      }
      connection.closeSync();
    })();
    const cut = 1_300;
    await speed.applyBatch(manifest(1, cut), async (connection) => {
      await writeBatchTables(connection, speed.views, goodEvents(records.slice(0, cut)));
      await sleep(50);
    });
    await sleep(50);
    reading = false;
    await reader;
    expect(reads).toBeGreaterThan(5);
    expect([...seen]).toEqual([JSON.stringify([total, expected.page_traffic.length])]);
    expect(await readFoundationViews(serving)).toEqual(expected);
  });
});
