import type { DuckDBInstance } from '@duckdb/node-api';
import { join } from 'node:path';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import { bindViews } from '../../core/views/bind-views.ts';

/**
 * A small stream for the serving engine's tests of live definitions and handoffs: events of schema
 * `{ts: TIMESTAMP, k: VARCHAR, v: BIGINT}`, five keys, one in seven two minutes late (so keys of
 * closed windows change too), and what the tests need to check views against a plain reduction.
 */
export interface KeyedEvent {
  readonly tsMs: number;
  readonly k: string;
  readonly v: number;
}

/** The YAML of the stream's source and speed layer (micro-batches every 100 ms), for a test's config. */
export function keyedSourceYaml(blockSize: number): string {
  return `
source: {timestamp: ts, schema: {ts: TIMESTAMP, k: VARCHAR, v: BIGINT}}
speed: {interval: 100ms, blockSize: ${blockSize}}
`;
}

/** Events `from` to `to` (exclusive) of the stream starting at `baseMs`, one every 100 ms. */
export function keyedEvents(baseMs: number, from: number, to: number): KeyedEvent[] {
  return Array.from({ length: to - from }, (_, j) => {
    const i = from + j;
    return { tsMs: baseMs + i * 100 - (i % 7 === 0 ? 120_000 : 0), k: `k${(i * 3) % 5}`, v: (i * 37) % 1_001 };
  });
}

/** The events as the local log's records (JSON, `ts` in epoch ms). */
export function keyedEventRecords(events: readonly KeyedEvent[]): Buffer[] {
  return events.map((e) => Buffer.from(JSON.stringify({ ts: e.tsMs, k: e.k, v: e.v })));
}

/** One row per group of `events` by `key`, groups in key order: a view by plain reduction. */
export function groupRows<K extends string | number>(events: readonly KeyedEvent[], key: (e: KeyedEvent) => K, row: (key: K, group: KeyedEvent[]) => number[]): number[][] {
  const groups = new Map<K, KeyedEvent[]>();
  for (const e of events) groups.set(key(e), [...(groups.get(key(e)) ?? []), e]);
  return [...groups].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, group]) => row(k, group));
}

/**
 * Writes view `name` (as `loaded` defines it) over `events` to `dir`/`file` as a batch version's
 * state file, with a DuckDB of `writer`; returns its manifest entry.
 */
export async function writeKeyedState(
  writer: DuckDBInstance,
  loaded: LoadedConfig,
  name: string,
  events: readonly KeyedEvent[],
  dir: string,
  file: string,
): Promise<BatchManifest['views'][string]> {
  const connection = await writer.connect();
  try {
    const bound = (await bindViews(loaded, connection)).find((b) => b.view.definition.name === name)!;
    const values = events.map((e) => `(make_timestamp(${e.tsMs * 1000}), '${e.k}', ${e.v})`);
    await connection.run(`CREATE OR REPLACE TEMP TABLE keyed_events (ts TIMESTAMP, k VARCHAR, v BIGINT)`);
    await connection.run(`INSERT INTO keyed_events VALUES ${values.join(', ')}`);
    await connection.run(`COPY (${bound.view.partialSql('keyed_events')}) TO '${join(dir, file)}' (FORMAT parquet)`);
    return { definitionHash: bound.view.definitionHash, file, rows: 0 };
  } finally {
    connection.closeSync();
  }
}
