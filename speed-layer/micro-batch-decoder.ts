import type { DuckDBConnection, DuckDBListValue } from '@duckdb/node-api';
import type { FieldType } from '../core/config/config-schema.ts';
import { createEventDecoder, type RejectReason } from '../core/events/decode-event.ts';
import { jsonDecodeSql } from '../core/events/json-decode-sql.ts';
import type { SourceRecord } from '../core/source/record-source.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { appendFieldValues } from './event-appender.ts';
import { RawStaging } from './raw-staging.ts';

/** The connection-private table holding a micro-batch's decoded events. */
export const DECODED_EVENTS_TABLE = 'speed_events';

/** A record that is not a valid event, with the reason `createEventDecoder` gave. */
export interface RejectedRecord {
  readonly record: SourceRecord;
  readonly reason: RejectReason;
  readonly message: string;
}

export interface DecodedMicroBatch {
  /** The good events (schema fields, `_partition`, `_offset`) as a relation for the partial SQL. */
  readonly relation: string;
  readonly goodCount: number;
  readonly rejected: readonly RejectedRecord[];
  /** Records DuckDB left to `createEventDecoder` (good or not). */
  readonly slowPathCount: number;
  /** Per partition with good events: the newest event time among them. */
  readonly newestEventMs: ReadonlyMap<number, number>;
}

/**
 * Decodes a micro-batch inside DuckDB: raw bytes in, typed events out (`jsonDecodeSql`), and
 * every record the SQL does not vouch for decoded by `createEventDecoder`, which alone decides
 * about rejects and words their reasons. Two round trips to DuckDB in the usual case: under
 * load every round trip waits for a thread, and micro-batches are frequent.
 */
export class MicroBatchDecoder {
  private readonly decodeEvent: ReturnType<typeof createEventDecoder>;
  private readonly fieldTypes: readonly FieldType[];
  private readonly decodeSql: string;

  private constructor(
    private readonly connection: DuckDBConnection,
    schema: EventSchema,
    private readonly staging: RawStaging,
  ) {
    this.decodeEvent = createEventDecoder(schema);
    this.fieldTypes = schema.fields.map((f) => f.type);
    const decode = jsonDecodeSql(schema, RawStaging.relation(), { rawColumn: 'raw', passthrough: ['_row', '_partition', '_offset'] });
    const ts = quoteIdent(schema.timestampField);
    this.decodeSql = [
      `CREATE OR REPLACE TEMP TABLE ${DECODED_EVENTS_TABLE} AS ${decode}`,
      RawStaging.resetSql(),
      // Per partition: good events, the newest event time, and the rows left to the slow path.
      `SELECT _partition, (count(*) FILTER (WHERE _fast))::DOUBLE, epoch_ms(max(${ts}) FILTER (WHERE _fast))::DOUBLE,
              list(_row) FILTER (WHERE NOT _fast)
       FROM temp.main.${DECODED_EVENTS_TABLE} GROUP BY _partition`,
    ].join(';\n');
  }

  static async create(connection: DuckDBConnection, schema: EventSchema): Promise<MicroBatchDecoder> {
    return new MicroBatchDecoder(connection, schema, await RawStaging.create(connection));
  }

  async decode(records: readonly SourceRecord[]): Promise<DecodedMicroBatch> {
    await this.staging.load(records);
    let rows;
    try {
      rows = (await this.connection.runAndReadAll(this.decodeSql)).getRows() as [number, number, number | null, DuckDBListValue | null][];
    } catch (error) {
      // The staged rows must not be decoded twice when the micro-batch is retried.
      await this.connection.run(RawStaging.resetSql()).catch(() => undefined);
      throw error;
    }
    let goodCount = 0;
    const newestEventMs = new Map<number, number>();
    const slowRows: number[] = [];
    for (const [partition, good, newestMs, slow] of rows) {
      goodCount += good;
      if (newestMs !== null) newestEventMs.set(partition, newestMs);
      if (slow) slowRows.push(...(slow.items as number[]));
    }
    // In arrival order, so that the newest rejected records are the last ones.
    const slow = await this.decodeSlowPath(records, slowRows.sort((a, b) => a - b));
    for (const [partition, eventMs] of slow.newestEventMs) newestEventMs.set(partition, Math.max(newestEventMs.get(partition) ?? eventMs, eventMs));
    return {
      relation: `(SELECT * FROM temp.main.${DECODED_EVENTS_TABLE} WHERE _fast)`,
      goodCount: goodCount + slow.goodCount,
      rejected: slow.rejected,
      slowPathCount: slowRows.length,
      newestEventMs,
    };
  }

  /** Decodes the rows DuckDB passed over; good ones join the decoded table, the rest are returned. */
  private async decodeSlowPath(
    records: readonly SourceRecord[],
    rows: readonly number[],
  ): Promise<{ goodCount: number; rejected: RejectedRecord[]; newestEventMs: Map<number, number> }> {
    const rejected: RejectedRecord[] = [];
    const newestEventMs = new Map<number, number>();
    let goodCount = 0;
    if (rows.length === 0) return { goodCount, rejected, newestEventMs };
    const appender = await this.connection.createAppender(DECODED_EVENTS_TABLE, 'main', 'temp');
    try {
      for (const row of rows) {
        const record = records[row]!;
        const result = this.decodeEvent(record.value);
        if (!result.ok) {
          rejected.push({ record, reason: result.reason, message: result.message });
          continue;
        }
        appender.appendInteger(row);
        appender.appendInteger(record.partition);
        appender.appendBigInt(BigInt(record.offset));
        appendFieldValues(appender, this.fieldTypes, result.event.values);
        appender.appendBoolean(true);
        appender.endRow();
        goodCount++;
        newestEventMs.set(record.partition, Math.max(newestEventMs.get(record.partition) ?? result.event.timestampMs, result.event.timestampMs));
      }
    } finally {
      appender.closeSync();
    }
    return { goodCount, rejected, newestEventMs };
  }
}
