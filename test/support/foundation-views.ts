import { DuckDBTimestampValue, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { validateConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { quoteIdent } from '../../core/sql/identifiers.ts';
import type { BoundView } from '../../core/views/bind-views.ts';
import { batchTable, createBatchTableSql, createServingViewSql } from '../../core/views/view-tables.ts';
import { sortRows, type GoodEvent, type ViewRow } from './foundation-events.ts';

const FOUNDATION = new URL('../fixtures/foundation.yaml', import.meta.url);

/** test/fixtures/foundation.yaml with another Kafka source and speed settings. */
export function foundationConfig(options: { brokers?: readonly string[]; topic: string; speed?: Record<string, unknown> }): LoadedConfig {
  const raw = parseYaml(readFileSync(FOUNDATION, 'utf8')) as { source: { kafka: unknown }; speed: Record<string, unknown> };
  raw.source.kafka = { brokers: [...(options.brokers ?? ['127.0.0.1:9092'])], topic: options.topic };
  raw.speed = { ...raw.speed, ...options.speed };
  return validateConfig(raw);
}

/** What the serving layer sets up beside the speed layer: empty batch tables and the SQL views. */
export async function createServingViews(connection: DuckDBConnection, views: readonly BoundView[]): Promise<void> {
  for (const bound of views) {
    await connection.run(createBatchTableSql(bound));
    await connection.run(createServingViewSql(bound));
  }
}

/** A DuckDB value as the reference reduction writes it: timestamps as epoch ms, integers as numbers. */
export function plain(value: DuckDBValue): string | number | null {
  if (value instanceof DuckDBTimestampValue) return Number(value.micros / 1000n);
  if (typeof value === 'bigint') return Number(value);
  return value as string | number | null;
}

/** Every row of the SQL views `page_traffic` and `revenue_by_country`, as plain values, sorted. */
export async function readFoundationViews(connection: DuckDBConnection): Promise<{ page_traffic: ViewRow[]; revenue_by_country: ViewRow[] }> {
  const read = async (view: string) => {
    const reader = await connection.runAndReadAll(`SELECT * FROM ${quoteIdent(view)}`);
    return sortRows(reader.getRowObjects().map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)]))));
  };
  return { page_traffic: await read('page_traffic'), revenue_by_country: await read('revenue_by_country') };
}

/**
 * Fills `batch__<view>` with the state of `events`, as a batch version covering them would: the
 * views' compiled partial SQL (shared by both layers) over a plain table of the events.
 */
export async function writeBatchTables(connection: DuckDBConnection, views: readonly BoundView[], events: readonly GoodEvent[]): Promise<void> {
  await connection.run(
    'CREATE OR REPLACE TEMP TABLE test_batch_events (ts TIMESTAMP, user_id VARCHAR, page VARCHAR, country VARCHAR, latency_ms DOUBLE, amount DOUBLE)',
  );
  const appender = await connection.createAppender('test_batch_events', 'main', 'temp');
  for (const e of events) {
    appender.appendTimestamp(new DuckDBTimestampValue(BigInt(e.tsMs) * 1000n));
    for (const v of [e.user_id, e.page, e.country]) {
      if (v === null) appender.appendNull();
      else appender.appendVarchar(v);
    }
    for (const v of [e.latency_ms, e.amount]) {
      if (v === null) appender.appendNull();
      else appender.appendDouble(v);
    }
    appender.endRow();
  }
  appender.closeSync();
  for (const bound of views) {
    const table = quoteIdent(batchTable(bound.view.definition.name));
    await connection.run(createBatchTableSql(bound));
    await connection.run(`DELETE FROM ${table}`);
    await connection.run(`INSERT INTO ${table} BY NAME ${bound.view.mergeSql(`(${bound.view.partialSql('temp.main.test_batch_events')})`)}`);
  }
  await connection.run('DROP TABLE temp.main.test_batch_events');
}
