import { seededRandom } from '../core/random/seeded-random.ts';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile, validateConfig, type LoadedConfig } from '../core/config/load-config.ts';
import { installSqlMacros } from '../core/duckdb/sql-macros.ts';
import { createEventDecoder } from '../core/events/decode-event.ts';
import { createLogger } from '../core/observability/logger.ts';
import { readPartitionChain } from '../core/storage/segment-chain.ts';
import { StorageLayout } from '../core/storage/storage-layout.ts';
import { expectBatchMatchesReference } from '../test/support/batch-assertions.ts';
import { generateRecord, type GoodEvent } from '../test/support/foundation-events.ts';
import { PartitionBuffer } from './partition-buffer.ts';
import { recompute } from './recompute.ts';
import { SegmentCompactor } from './segment-compactor.ts';
import { SegmentWriter } from './segment-writer.ts';
import { packRecords } from '../core/source/packed-records.ts';

const FOUNDATION = fileURLToPath(new URL('../test/fixtures/foundation.yaml', import.meta.url));
const TOPIC = 'clicks';

interface Written {
  partition: number;
  offset: number;
  event: GoodEvent | undefined;
}

describe('recompute over the master dataset', () => {
  let dir: string;
  let duckdb: DuckDBInstance;
  let connection: DuckDBConnection;
  let loaded: LoadedConfig;
  let layout: StorageLayout;
  let writer: SegmentWriter;
  const written: Written[] = [];
  const gap = { partition: 1, from: 700, to: 900 };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'recompute-'));
    layout = new StorageLayout(dir);
    loaded = await loadConfigFile(FOUNDATION);
    duckdb = await DuckDBInstance.create(':memory:');
    connection = await duckdb.connect();
    await installSqlMacros(connection);
    writer = await SegmentWriter.create({ duckdb, layout, topic: TOPIC, schema: loaded.schema });
    const decode = createEventDecoder(loaded.schema);
    const random = seededRandom(7);
    // Partition 0: 1,234 offsets in segments of random sizes; partition 1: 2,600 with a retention gap.
    for (const [partition, total] of [
      [0, 1_234],
      [1, 2_600],
    ] as const) {
      let offset = 0;
      while (offset < total) {
        if (partition === gap.partition && offset === gap.from) {
          await writer.writeGap({ partition, firstOffset: gap.from, endOffsetExclusive: gap.to, detectedAt: new Date() });
          offset = gap.to;
          continue;
        }
        const end = Math.min(total, offset + 1 + Math.floor(random() * 150), partition === gap.partition && offset < gap.from ? gap.from : Infinity);
        const buffer = new PartitionBuffer(partition, offset, loaded.schema.fields.length);
        const records = [];
        for (let o = offset; o < end; o++) {
          const { value, event } = generateRecord(random, o, 25);
          records.push({ partition, offset: o, timestampMs: 1_000 + o, value });
          written.push({ partition, offset: o, event });
        }
        buffer.add(packRecords(records), decode, Date.now());
        await writer.write(buffer.content());
        offset = end;
      }
    }
  });

  afterAll(async () => {
    await writer?.close();
    connection?.closeSync();
    duckdb?.closeSync();
    rmSync(dir, { recursive: true, force: true });
  });

  const below = (cuts: Record<string, number>) => written.filter((w) => w.offset < (cuts[String(w.partition)] ?? 0));

  it('writes each view as merged partial state below block-aligned cuts, matching a plain reduction', async () => {
    const manifest = await recompute({ connection, layout, topic: TOPIC, schema: loaded.schema, views: loaded.views, blockSize: 500, version: 1, producedBy: 'test' });
    expect(manifest.cuts).toEqual({ '0': 1_000, '1': 2_500 });
    const covered = below(manifest.cuts);
    expect(manifest.eventsRead).toBe(covered.length);
    expect(covered.length).toBe(1_000 + 2_500 - (gap.to - gap.from));
    await expectBatchMatchesReference(connection, dir, manifest, loaded.views, covered.flatMap((w) => (w.event ? [w.event] : [])));
    expect(manifest.views['page_traffic']!.definitionHash).toBe(loaded.views[0]!.definitionHash);
    expect(manifest.location).toBe('batch/v00000001');
    expect(readdirSync(join(dir, 'batch'))).toEqual(['v00000001']);
  });

  it('gives the same result after small segments are compacted, reading each offset once', async () => {
    const compactor = new SegmentCompactor(writer, layout, createLogger('test'), { smallSegmentOffsets: 200, maxMergedOffsets: 1_000, graceMs: 60_000 });
    const before = await readPartitionChain(layout, TOPIC, 0);
    const result = await compactor.compactPartition(0);
    expect(result.merged).toBeGreaterThan(0);
    const after = await readPartitionChain(layout, TOPIC, 0);
    expect(after.items.length).toBeLessThan(before.items.length);
    expect(after.superseded.length).toBeGreaterThan(0); // still there for readers, within the grace period
    expect(after.endOffsetExclusive).toBe(before.endOffsetExclusive);

    const manifest = await recompute({ connection, layout, topic: TOPIC, schema: loaded.schema, views: loaded.views, blockSize: 500, version: 2, producedBy: 'test' });
    const covered = below(manifest.cuts);
    expect(manifest.eventsRead).toBe(covered.length);
    await expectBatchMatchesReference(connection, dir, manifest, loaded.views, covered.flatMap((w) => (w.event ? [w.event] : [])));

    const cleaner = new SegmentCompactor(writer, layout, createLogger('test'), { smallSegmentOffsets: 200, maxMergedOffsets: 1_000, graceMs: 0 });
    expect((await cleaner.compactPartition(0)).deleted).toBeGreaterThan(0);
    expect((await readPartitionChain(layout, TOPIC, 0)).superseded).toEqual([]);
  });

  it('picks up a changed view definition on the next run', async () => {
    const raw = structuredClone(loaded.config) as unknown as Record<string, any>;
    raw['views']['revenue_by_country'] = { window: 'none', dimensions: ['page'], measures: { revenue: 'count(*)' } };
    const changed = validateConfig(raw);
    const manifest = await recompute({ connection, layout, topic: TOPIC, schema: changed.schema, views: changed.views, blockSize: 500, version: 3, producedBy: 'test' });
    const view = changed.views.find((v) => v.definition.name === 'revenue_by_country')!;
    expect(manifest.views['revenue_by_country']!.definitionHash).not.toBe(loaded.views[1]!.definitionHash);
    const rows = (await connection.runAndReadAll(view.finalizeSql(`read_parquet('${join(dir, manifest.views['revenue_by_country']!.file)}')`))).getRowObjectsJS();
    const expected = new Map<string | null, number>();
    for (const w of below(manifest.cuts)) if (w.event) expected.set(w.event.page, (expected.get(w.event.page) ?? 0) + 1);
    expect(new Map(rows.map((r) => [r['page'] as string | null, Number(r['revenue'])]))).toEqual(expected);
  });

  it('refuses to write a version whose cut would go below the serving one', async () => {
    const previous = await recompute({ connection, layout, topic: TOPIC, schema: loaded.schema, views: loaded.views, blockSize: 500, version: 4, producedBy: 'test' });
    const inflated = { ...previous, cuts: { ...previous.cuts, '0': 5_000 } };
    await expect(
      recompute({ connection, layout, topic: TOPIC, schema: loaded.schema, views: loaded.views, blockSize: 500, version: 5, producedBy: 'test', previous: inflated }),
    ).rejects.toThrow(/partition 0: 1000 < 5000/);
    expect(readdirSync(join(dir, 'batch')).filter((n) => !n.startsWith('v'))).toEqual([]);
  });

  it('a backfill run (keepCuts) computes the new views below the previous cuts and takes the unchanged ones as they are, hard-linked', async () => {
    const [traffic, revenue] = [loaded.views.find((v) => v.definition.name === 'page_traffic')!, loaded.views.find((v) => v.definition.name === 'revenue_by_country')!];
    const previous = await recompute({ connection, layout, topic: TOPIC, schema: loaded.schema, views: [traffic], blockSize: 500, version: 6, producedBy: 'test' });
    expect(previous.cuts).toEqual({ '0': 1_000, '1': 2_500 });
    // Newer events archived since: partition 0 could be cut at 1,500 now.
    const decode = createEventDecoder(loaded.schema);
    const random = seededRandom(8);
    const buffer = new PartitionBuffer(0, 1_234, loaded.schema.fields.length);
    const records = [];
    for (let o = 1_234; o < 1_800; o++) {
      const { value, event } = generateRecord(random, o, 25);
      records.push({ partition: 0, offset: o, timestampMs: 1_000 + o, value });
      written.push({ partition: 0, offset: o, event });
    }
    buffer.add(packRecords(records), decode, Date.now());
    await writer.write(buffer.content());

    const manifest = await recompute({
      connection, layout, topic: TOPIC, schema: loaded.schema, views: [traffic, revenue], blockSize: 500, version: 7, producedBy: 'test', previous, extendUnchanged: true, keepCuts: true,
    });
    expect(manifest.cuts).toEqual(previous.cuts);
    const covered = below(manifest.cuts);
    expect(manifest.eventsRead).toBe(covered.length);
    await expectBatchMatchesReference(connection, dir, manifest, [traffic, revenue], covered.flatMap((w) => (w.event ? [w.event] : [])));
    const inode = (m: typeof manifest) => statSync(join(dir, m.views['page_traffic']!.file)).ino;
    expect(inode(manifest)).toBe(inode(previous));
    expect(manifest.views['page_traffic']!.rows).toBe(previous.views['page_traffic']!.rows);

    // Without keepCuts the cuts move on and the unchanged view is extended: a file of its own.
    const moved = await recompute({ connection, layout, topic: TOPIC, schema: loaded.schema, views: [traffic, revenue], blockSize: 500, version: 8, producedBy: 'test', previous: manifest, extendUnchanged: true });
    expect(moved.cuts).toEqual({ '0': 1_500, '1': 2_500 });
    expect(moved.eventsRead).toBe(below(moved.cuts).length);
    expect(inode(moved)).not.toBe(inode(manifest));
    await expectBatchMatchesReference(connection, dir, moved, [traffic, revenue], below(moved.cuts).flatMap((w) => (w.event ? [w.event] : [])));
  });
});
