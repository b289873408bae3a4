import type { DuckDBConnection } from '@duckdb/node-api';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';

const BASE_MS = Date.UTC(2026, 0, 1);
const PARTITIONS = 4;

/**
 * Master-dataset segments of foundation.yaml's schema for the benches, written by DuckDB:
 * 10k (page, country) keys, 10k users, event times over ten 1-minute windows (as the speed bench).
 * `events` spread over 4 partitions in 250k-offset segments; with `fromOffset`, each partition's
 * offsets start there (more history appended after an earlier call of `fromOffset` 0), with
 * event times over the same ten minutes: late events, merged into the keys already there.
 */
export async function writeMasterDataset(connection: DuckDBConnection, layout: StorageLayout, topic: string, events: number, fromOffset = 0): Promise<void> {
  const perPartition = Math.floor(events / PARTITIONS);
  const segment = 250_000;
  for (let p = 0; p < PARTITIONS; p++) {
    mkdirSync(layout.masterPartitionDir(topic, p), { recursive: true });
    for (let first = fromOffset; first < fromOffset + perPartition; first += segment) {
      const end = Math.min(fromOffset + perPartition, first + segment);
      const file = join(layout.masterPartitionDir(topic, p), StorageLayout.segmentFileName({ topic, partition: p, firstOffset: first, endOffsetExclusive: end }));
      await connection.run(`COPY (
        SELECT ${p}::INTEGER AS _partition, o::BIGINT AS _offset, make_timestamp(${BASE_MS * 1000}::BIGINT + o * 1000) AS _kafka_ts,
               make_timestamp((${BASE_MS}::BIGINT + ((t * 600000) // ${events})) * 1000) AS ts,
               'u' || ((i * 7919) % 10000)::VARCHAR AS user_id,
               '/page/' || (i % 100)::VARCHAR AS page,
               'C' || lpad(((i // 100) % 100)::VARCHAR, 2, '0') AS country,
               (i % 997) + 0.5 AS latency_ms,
               (i % 400) / 4 AS amount
        FROM (SELECT o, o * ${PARTITIONS} + ${p} AS i, (o - ${fromOffset}) * ${PARTITIONS} + ${p} AS t FROM range(${first}, ${end}) r(o))
      ) TO ${quoteLiteral(file)} (FORMAT parquet)`);
    }
  }
}
