import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { LoadedConfig } from '../../core/config/load-config.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { SEGMENT_PARQUET_OPTIONS } from '../../core/storage/segment-parquet.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { MasterDatasetViews } from '../../serving-layer/engine/master-dataset-views.ts';
import type { QueryRunner } from '../../serving-layer/query/query-runner.ts';
import { EventsTail } from '../../speed-layer/events-tail.ts';
import { percentile, printBenchLine } from './bench-report.ts';

const PARTITIONS = 4;
/** Rows per segment file: the archiver's flush at 100,000 records. */
const SEGMENT_ROWS = 100_000;
const SPAN_MS = 3_600_000;
/** Events whose event time lies behind their append time, as in real streams (mobile clients, retries). */
const LATE_FRACTION = 0.01;
const LATE_MAX_MS = 600_000;
const TOPIC = 'clicks';

/**
 * serving.events.last5m.p50 / p99: a query over the last 5 minutes of `events` with `archived`
 * events in Parquet segments (as the archiver writes them: 4 partitions, 100k-record segments,
 * one hour of event time rising with the offset but 1% of the events up to 10 minutes late) and
 * `tailRows` more in the speed layer's tail, through the QueryRunner; baseline: the same query
 * on a plain DuckDB table holding the same rows.
 */
export async function benchEventsQuery(options: {
  readonly loaded: LoadedConfig;
  readonly admin: DuckDBConnection;
  readonly runner: QueryRunner;
  readonly archived: number;
  readonly tailRows: number;
}): Promise<void> {
  const { loaded, admin, runner, archived, tailRows } = options;
  const dir = mkdtempSync(join(tmpdir(), 'lambda-events-bench-'));
  try {
    const layout = new StorageLayout(dir);
    const total = archived + tailRows;
    const nowMs = Date.now();
    const perPartition = Math.ceil(total / PARTITIONS);
    // Offset o of partition p is event i = o * PARTITIONS + p, appended at a time rising with i;
    // its event time is that, except for LATE_FRACTION of the events, up to LATE_MAX_MS earlier.
    const appendedMs = (p: number) => `(${nowMs - SPAN_MS} + (o * ${PARTITIONS} + ${p}) * ${SPAN_MS} // ${total})`;
    const lateMs = (p: number) => `CASE WHEN (hash(o * ${PARTITIONS} + ${p}) % 10000)::BIGINT < ${LATE_FRACTION * 10_000} THEN (hash(o * ${PARTITIONS} + ${p}, 'late') % ${LATE_MAX_MS})::BIGINT ELSE 0 END`;
    const rows = (p: number, from: number, to: number) => `SELECT ${p}::INTEGER AS _partition, o::BIGINT AS _offset,
        make_timestamp(${appendedMs(p)} * 1000) AS _kafka_ts,
        make_timestamp((${appendedMs(p)} - ${lateMs(p)}) * 1000) AS ts,
        'u' || (o % 50000) AS user_id, '/p' || (o % 50) AS page, 'c' || ((o // 50) % 20) AS country,
        (o % 997)::DOUBLE AS latency_ms, (o % 50)::DOUBLE AS amount
      FROM range(${from}, ${to}) t(o)`;
    const archivedPerPartition = Math.floor(archived / PARTITIONS);
    const startedMs = performance.now();
    for (let p = 0; p < PARTITIONS; p++) {
      mkdirSync(layout.masterPartitionDir(TOPIC, p), { recursive: true });
      for (let from = 0; from < archivedPerPartition; from += SEGMENT_ROWS) {
        const to = Math.min(archivedPerPartition, from + SEGMENT_ROWS);
        const file = join(layout.masterPartitionDir(TOPIC, p), StorageLayout.segmentFileName({ topic: TOPIC, partition: p, firstOffset: from, endOffsetExclusive: to }));
        await admin.run(`COPY (${rows(p, from, to)}) TO ${quoteLiteral(file)} (${SEGMENT_PARQUET_OPTIONS})`);
      }
    }
    // The tail as a node holds it: the events not archived yet, and the newest archived ones
    // (speed.recentEvents) down to where the split trails the archive's end at its lowest, three
    // quarters of the partition's share.
    const { recentEvents, maxEventsTail } = loaded.config.speed;
    const tail = await EventsTail.create(admin, loaded.schema, Math.max(maxEventsTail, tailRows), recentEvents);
    const recentFrom = Math.max(0, archivedPerPartition - Math.floor(recentEvents / PARTITIONS));
    await admin.run(`CREATE TEMP TABLE tail_rows AS ${Array.from({ length: PARTITIONS }, (_, p) => rows(p, recentFrom, perPartition)).join(' UNION ALL ')}`);
    await tail.append('temp.main.tail_rows', new Set([0, 1, 2, 3]), true);
    await admin.run('DROP TABLE temp.main.tail_rows');
    tail.frontier.committed(new Map(Array.from({ length: PARTITIONS }, (_, p) => [p, perPartition])), new Set(), new Set());
    const views = new MasterDatasetViews({ layout, topic: TOPIC, schema: loaded.schema, eventsTail: tail });
    views.committed(await views.refresh(admin, undefined));
    await tail.prune();
    await admin.run('CREATE TABLE events_plain AS SELECT * FROM events');
    const generatedMs = performance.now() - startedMs;
    process.stderr.write(
      `events bench: ${PARTITIONS * archivedPerPartition} archived events in Parquet, ${PARTITIONS * (perPartition - archivedPerPartition)} not archived yet; ` +
        `the tail holds ${tail.tailRows} (with the newest archived, speed.recentEvents ${recentEvents}) (generated in ${Math.round(generatedMs)} ms)\n`,
    );

    const since = new Date(nowMs - 300_000).toISOString().replace('T', ' ').slice(0, 23);
    const query = (table: string) => `SELECT page, count(*) AS n, sum(amount) AS revenue, max(latency_ms) AS max_latency
      FROM ${table} WHERE ts >= TIMESTAMP '${since}' GROUP BY page ORDER BY page`;
    const [ours, plain] = [await runner.run(query('events')), await runner.run(query('events_plain'))];
    if (JSON.stringify(ours.rows) !== JSON.stringify(plain.rows)) throw new Error('events and the plain table disagree');
    const times = async (sql: string, runs: number) => {
      const ms: number[] = [];
      for (let i = 0; i < runs; i++) {
        const started = performance.now();
        await runner.run(sql);
        ms.push(performance.now() - started);
      }
      return ms;
    };
    await times(query('events'), 5);
    const oursMs: number[] = [];
    const baseMs: number[] = [];
    for (let round = 0; round < 20; round++) {
      // Interleaved, so that load from elsewhere hits both alike.
      oursMs.push(...(await times(query('events'), 5)));
      baseMs.push(...(await times(query('events_plain'), 5)));
    }
    const size = `${PARTITIONS * archivedPerPartition} archived + ${PARTITIONS * (perPartition - archivedPerPartition)} not yet; tail ${tail.tailRows} rows`;
    printBenchLine({ bench: 'serving.events.last5m.p50', value: percentile(oursMs, 50), unit: `ms (${size})`, baseline: 'plain DuckDB table, same rows, same query, p50', baselineValue: percentile(baseMs, 50) });
    printBenchLine({ bench: 'serving.events.last5m.p99', value: percentile(oursMs, 99), unit: `ms (${size})`, baseline: 'plain DuckDB table, same rows, same query, p99', baselineValue: percentile(baseMs, 99) });
    await admin.run('DROP TABLE events_plain');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
