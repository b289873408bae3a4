import type { DuckDBConnection } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { describeQuery } from '../../core/duckdb/column-types.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import { batchTable, mergedViewSql, realtimeTable } from '../../core/views/view-tables.ts';
import { MaterializedViews } from './materialized-views.ts';
import { ServingDatabase } from './serving-database.ts';
import { seededRandom } from '../../core/random/seeded-random.ts';

const BLOCK = 50;
const BASE_MS = Date.UTC(2026, 10, 21, 9);

const CONFIG = `
source: {timestamp: ts, schema: {ts: TIMESTAMP, k: VARCHAR, v: BIGINT}}
speed: {blockSize: ${BLOCK}}
views:
  per_minute:
    window: 1 minute
    dimensions: [k]
    filter: "v % 5 <> 0"
    measures: {n: count(*), s: sum(v), lo: min(v), mean: avg(v), distinct_v: approx_count_distinct(v)}
  totals: {dimensions: [k], measures: {n: count(*), s: sum(v)}}
  everything: {filter: "v % 7 <> 0", measures: {n: count(*), hi: max(v)}}
`;

interface TestEvent {
  readonly offset: number;
  readonly tsMs: number;
  readonly k: string | null;
  readonly v: number;
}

type Row = Record<string, string | number | null>;


/** The three views by plain reduction over the events; rows sorted by key. */
function reference(events: readonly TestEvent[]): Record<string, Row[]> {
  const perMinute = new Map<string, { row: Row; values: number[] }>();
  const totals = new Map<string, Row & { n: number; s: number }>();
  const everything = events.filter((e) => e.v % 7 !== 0);
  for (const e of events) {
    const total = totals.get(String(e.k)) ?? { k: e.k, n: 0, s: 0 };
    total.n++;
    total.s += e.v;
    totals.set(String(e.k), total);
    if (e.v % 5 === 0) continue;
    const windowStart = Math.floor(e.tsMs / 60_000) * 60_000;
    const id = `${windowStart}/${e.k}`;
    const entry = perMinute.get(id) ?? { row: { window_start: windowStart, k: e.k }, values: [] };
    entry.values.push(e.v);
    perMinute.set(id, entry);
  }
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return sortAll({
    per_minute: [...perMinute.values()].map(({ row, values }) => ({
      ...row, n: values.length, s: sum(values), lo: Math.min(...values), mean: sum(values) / values.length, distinct_v: new Set(values).size,
    })),
    totals: [...totals.values()],
    everything: everything.length === 0 ? [] : [{ n: everything.length, hi: Math.max(...everything.map((e) => e.v)) }],
  });
}

function sortAll(views: Record<string, Row[]>): Record<string, Row[]> {
  const id = (row: Row) => JSON.stringify([row.window_start ?? null, row.k ?? null]);
  return Object.fromEntries(Object.entries(views).map(([name, rows]) => [name, rows.sort((a, b) => (id(a) < id(b) ? -1 : id(a) > id(b) ? 1 : 0))]));
}

function plain(value: unknown): string | number | null {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'bigint') return Number(value);
  return value as string | number | null;
}

async function readViews(connection: DuckDBConnection, names: readonly string[]): Promise<Record<string, Row[]>> {
  const views: Record<string, Row[]> = {};
  for (const name of names) {
    const reader = await connection.runAndReadAll(`SELECT * FROM ${quoteIdent(name)}`);
    views[name] = reader.getRowObjectsJS().map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)])));
  }
  return sortAll(views);
}

describe('materialized views', () => {
  let db: ServingDatabase;
  let c: DuckDBConnection;
  let names: string[];

  beforeEach(async () => {
    db = await ServingDatabase.create(parseConfig(CONFIG));
    c = db.adminConnection;
    names = db.bound.map((b) => b.view.definition.name);
    await c.run('CREATE TABLE log (ts TIMESTAMP, k VARCHAR, v BIGINT, _partition INTEGER, _offset BIGINT)');
  });

  afterEach(() => db?.close());

  /** What the speed layer does with a micro-batch: its partial state and the listener, in one transaction. */
  async function microBatch(materialized: MaterializedViews, events: readonly TestEvent[]): Promise<void> {
    const values = events.map((e) => `(make_timestamp(${e.tsMs * 1000}), ${e.k === null ? 'NULL' : `'${e.k}'`}, ${e.v}, 0, ${e.offset})`);
    await c.run(`INSERT INTO log VALUES ${values.join(', ')}`);
    const relation = `(SELECT * FROM log WHERE _offset >= ${events[0]!.offset})`;
    await c.run('BEGIN TRANSACTION');
    for (const bound of db.bound) {
      const partial = bound.view.partialSql(relation, [{ name: '_partition' }, { name: '_block', sql: `_offset // ${BLOCK}` }]);
      await c.run(`INSERT INTO ${quoteIdent(realtimeTable(bound.view.definition.name))} BY NAME ${partial}`);
    }
    await materialized.microBatchInTransaction(c, relation);
    await c.run('COMMIT');
  }

  /** What a handoff does: batch state of the offsets below `cut`, realtime blocks below it dropped, the listener; one transaction. */
  async function handoff(materialized: MaterializedViews, cut: number): Promise<void> {
    await c.run('BEGIN TRANSACTION');
    for (const bound of db.bound) {
      const name = bound.view.definition.name;
      await c.run(`DELETE FROM ${quoteIdent(batchTable(name))}`);
      await c.run(`INSERT INTO ${quoteIdent(batchTable(name))} BY NAME ${bound.view.partialSql(`(SELECT * FROM log WHERE _offset < ${cut})`)}`);
      await c.run(`DELETE FROM ${quoteIdent(realtimeTable(name))} WHERE _block < ${cut / BLOCK}`);
    }
    await materialized.batchAppliedInTransaction(c);
    await c.run('COMMIT');
  }

  it('equals a plain reduction over the events after random micro-batches with late events and handoffs', async () => {
    const random = seededRandom(7);
    // A small rewrite threshold, so that tables are also rebuilt from their own rows.
    const materialized = await MaterializedViews.create(c, db.bound, { rewriteMinRows: 20 });
    const events: TestEvent[] = [];
    let cut = 0;
    for (let round = 0; round < 40; round++) {
      const batch = Array.from({ length: 1 + Math.floor(random() * 60) }, (_, i) => {
        const offset = events.length + i;
        const late = random() < 0.1;
        const k = random() < 0.1 ? null : `k${Math.floor(random() * 6)}`;
        return { offset, tsMs: BASE_MS + offset * 2_000 - (late ? 3_600_000 + Math.floor(random() * 600_000) : 0), k, v: Math.floor(random() * 100) };
      });
      events.push(...batch);
      await microBatch(materialized, batch);
      if (random() < 0.2) {
        // Half of the handoffs cover every whole block: the keys of the blocks below are then in
        // the batch state alone, which the next micro-batches merge their state into.
        const covered = random() < 0.5 ? events.length : events.length * random();
        cut = Math.max(cut, Math.floor(covered / BLOCK) * BLOCK);
        await handoff(materialized, cut);
      }
      if (random() < 0.2) {
        // A compaction of realtime blocks, which the views must not notice.
        for (const bound of db.bound) {
          const table = quoteIdent(realtimeTable(bound.view.definition.name));
          await c.run(`CREATE OR REPLACE TEMP TABLE compacted AS ${bound.view.mergeSql(table, ['_partition', '_block'])}`);
          await c.run(`DELETE FROM ${table}`);
          await c.run(`INSERT INTO ${table} BY NAME SELECT * FROM temp.main.compacted`);
        }
      }
      expect(await readViews(c, names), `after micro-batch ${round}`).toEqual(reference(events));
    }
    expect(cut).toBeGreaterThan(0);
  });

  it('serves the same columns, in the same order and types, as the view merged on read', async () => {
    for (const bound of db.bound) {
      expect(await describeQuery(c, `SELECT * FROM ${quoteIdent(bound.view.definition.name)}`)).toEqual(await describeQuery(c, mergedViewSql(bound)));
    }
    const merged = await Promise.all(names.map((name) => describeQuery(c, `SELECT * FROM ${quoteIdent(name)}`)));
    await MaterializedViews.create(c, db.bound);
    const materialized = await Promise.all(names.map((name) => describeQuery(c, `SELECT * FROM ${quoteIdent(name)}`)));
    expect(materialized).toEqual(merged);
    expect(materialized[0]!.map((column) => `${column.name} ${column.type}`)).toEqual([
      'window_start TIMESTAMP', 'k VARCHAR', 'n BIGINT', 's HUGEINT', 'lo BIGINT', 'mean DOUBLE', 'distinct_v BIGINT',
    ]);
    expect(materialized[1]!.map((column) => column.name)).toEqual(['k', 'n', 's']);
  });

  it('picks up state written before it was created, and keeps merging on read without it', async () => {
    const events = [0, 1, 2].map((offset) => ({ offset, tsMs: BASE_MS, k: 'a', v: offset + 1 }));
    await c.run(`INSERT INTO log VALUES ${events.map((e) => `(make_timestamp(${e.tsMs * 1000}), '${e.k}', ${e.v}, 0, ${e.offset})`).join(', ')}`);
    for (const bound of db.bound) {
      await c.run(`INSERT INTO ${quoteIdent(batchTable(bound.view.definition.name))} BY NAME ${bound.view.partialSql('log')}`);
    }
    expect(await readViews(c, names)).toEqual(reference(events));
    await MaterializedViews.create(c, db.bound);
    expect(await readViews(c, names)).toEqual(reference(events));
  });
});
