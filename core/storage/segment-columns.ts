import type { ColumnType } from '../duckdb/column-types.ts';
import type { EventSchema } from '../views/view-definition.ts';

/**
 * The columns of the master dataset's Parquet files (DESIGN.md, "Storage"): where each record
 * came from, then the schema's fields with the timestamp field as TIMESTAMP. Compiled view SQL
 * runs over these columns directly.
 */
export const SEGMENT_META_COLUMNS: readonly ColumnType[] = [
  { name: '_partition', type: 'INTEGER' },
  { name: '_offset', type: 'BIGINT' },
  { name: '_kafka_ts', type: 'TIMESTAMP' },
];

export function masterSegmentColumns(schema: EventSchema): ColumnType[] {
  return [...SEGMENT_META_COLUMNS, ...schema.fields.map((f) => ({ name: f.name, type: f.type }))];
}

/** Records that could not be decoded, kept beside the segments with why (the `rejected` table). */
export const REJECTED_COLUMNS: readonly ColumnType[] = [
  { name: '_topic', type: 'VARCHAR' },
  { name: '_partition', type: 'INTEGER' },
  { name: '_offset', type: 'BIGINT' },
  { name: '_kafka_ts', type: 'TIMESTAMP' },
  /** One of decode-event's RejectReason values. */
  { name: 'reason', type: 'VARCHAR' },
  { name: 'message', type: 'VARCHAR' },
  /** The record's value as UTF-8 text (invalid bytes replaced); NULL for an empty record. */
  { name: 'raw', type: 'VARCHAR' },
];
