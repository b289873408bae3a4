import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import { LocalBatchManifestStore } from '../../core/coordination/local-batch-manifest-store.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';

/** Event times of the history: ten 1-minute windows from here. */
export const HISTORY_BASE_MS = Date.UTC(2026, 0, 1);
/** Every history event is before this; events produced live carry the wall clock (later). */
export const HISTORY_END_MS = HISTORY_BASE_MS + 600_000;
const SEGMENT_ROWS = 250_000;

/**
 * The i-th event of the benches' stream (history and live alike): 10k (page, country) keys, 10k
 * users, as the speed and batch benches generate them. The SQL twin is in writeHistorySegments.
 */
export function benchEvent(i: number, tsMs: number): Record<string, unknown> {
  return {
    ts: new Date(tsMs).toISOString(),
    user_id: `u${(i * 7919) % 10_000}`,
    page: `/page/${i % 100}`,
    country: `C${String(Math.floor(i / 100) % 100).padStart(2, '0')}`,
    latency_ms: (i % 997) + 0.5,
    amount: (i % 400) / 4,
  };
}

/**
 * A single-node history made without ingesting it: `events` master-dataset segments of the local
 * log's one partition (offsets 0..events-1, written by DuckDB as the archiver would name them),
 * with event times over ten minutes from HISTORY_BASE_MS.
 */
export async function writeHistorySegments(connection: DuckDBConnection, layout: StorageLayout, topic: string, events: number): Promise<void> {
  mkdirSync(layout.masterPartitionDir(topic, 0), { recursive: true });
  for (let first = 0; first < events; first += SEGMENT_ROWS) {
    const end = Math.min(events, first + SEGMENT_ROWS);
    const file = join(layout.masterPartitionDir(topic, 0), StorageLayout.segmentFileName({ topic, partition: 0, firstOffset: first, endOffsetExclusive: end }));
    await connection.run(`COPY (
      SELECT 0::INTEGER AS _partition, i::BIGINT AS _offset, make_timestamp(${HISTORY_BASE_MS * 1000}::BIGINT + i * 1000) AS _kafka_ts,
             make_timestamp((${HISTORY_BASE_MS}::BIGINT + ((i * 600000) // ${events})) * 1000) AS ts,
             'u' || ((i * 7919) % 10000)::VARCHAR AS user_id,
             '/page/' || (i % 100)::VARCHAR AS page,
             'C' || lpad(((i // 100) % 100)::VARCHAR, 2, '0') AS country,
             (i % 997) + 0.5 AS latency_ms,
             (i % 400) / 4 AS amount
      FROM range(${first}, ${end}) r(i)
    ) TO ${quoteLiteral(file)} (FORMAT parquet)`);
  }
}

/**
 * Makes the history the node's: `manifest` (a batch version computed over it) published as
 * `batch/current`, and the local log starting at `endOffset` (an empty first segment named after
 * it: LocalLog.open takes the first segment's base offset as its start), so that the archiver
 * resumes there and the speed layer consumes from the version's cuts.
 */
export async function adoptHistory(layout: StorageLayout, manifest: BatchManifest, endOffset: number): Promise<void> {
  await new LocalBatchManifestStore(layout).publish(manifest, { memberId: 'bench', signal: new AbortController().signal, fencingToken: 'local' });
  mkdirSync(layout.localLogDir(), { recursive: true });
  writeFileSync(join(layout.localLogDir(), `${String(endOffset).padStart(20, '0')}.log`), '');
}
