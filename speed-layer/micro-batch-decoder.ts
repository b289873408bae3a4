import { DuckDBTimestampValue, type DuckDBConnection, type DuckDBInstance, type DuckDBListValue } from '@duckdb/node-api';
import { randomBytes } from 'node:crypto';
import type { FieldType } from '../core/config/config-schema.ts';
import { createEventDecoder, type RejectReason } from '../core/events/decode-event.ts';
import { canonicalLaneSql } from '../core/events/canonical-lane-sql.ts';
import { jsonDecodeSql } from '../core/events/json-decode-sql.ts';
import type { SourceRecord } from '../core/source/record-source.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { appendFieldValues } from './event-appender.ts';
import { EventStaging, type StagedEventCounts } from './event-staging.ts';
import { RawStaging } from './raw-staging.ts';
import { runLength, runRecord, type RecordRun } from './record-run.ts';
import { SerialLock } from '../core/duckdb/serial-lock.ts';

/** The tables holding decoded micro-batches, in the decoder's own in-memory database. */
export const DECODED_EVENTS_TABLE = 'speed_events';

/** A record that is not a valid event, with the reason `createEventDecoder` gave. */
export interface RejectedRecord {
  readonly record: SourceRecord;
  readonly reason: RejectReason;
  readonly message: string;
}

export interface DecodedMicroBatch {
  /** The good events (schema fields, `_partition`, `_offset`, `_kafka_ts`) as a relation for the partial SQL. */
  readonly relation: string;
  /** The table behind `relation`, kept until `release`. */
  readonly slot: number;
  readonly goodCount: number;
  readonly rejected: readonly RejectedRecord[];
  /** Records DuckDB left to `createEventDecoder` (good or not). */
  readonly slowPathCount: number;
  /** Per partition with good events: the newest event time among them. */
  readonly newestEventMs: ReadonlyMap<number, number>;
}

/** One slot: where a micro-batch is staged, and the table its decoded events go to. */
interface Slot {
  readonly staging: RawStaging;
  readonly events: EventStaging;
  readonly table: string;
  readonly decodeSql: string;
}

/**
 * Decodes a micro-batch into a table of typed events, cheapest route first: canonical records
 * (CanonicalEventReader) are read in JavaScript as they are staged; the rest are decoded by SQL in
 * DuckDB (`canonicalLaneSql`, `jsonDecodeSql`); what neither vouches for goes to
 * `createEventDecoder`, which alone decides rejects and their reasons.
 *
 * Staging of micro-batch n+1, decoding of n and the commit of n-1 run at once on three
 * connections, so the tables live in an in-memory database of the decoder's own, attached to the
 * instance (never in the shared database's WAL). A result holds its slot (staging and decoded
 * table) until `release`; a decode takes only a free slot.
 */
export class MicroBatchDecoder {
  private readonly decodeEvent: ReturnType<typeof createEventDecoder>;
  private readonly fieldTypes: readonly FieldType[];
  /** One decode on the decoder connection at a time, one load on the staging connection. */
  private readonly decodeLock = new SerialLock();
  private readonly stagingLock = new SerialLock();
  /** Created as needed. */
  private readonly slots: Slot[] = [];
  /** Slots holding a result (or a decode in progress) not released yet. */
  private readonly held = new Set<number>();

  private constructor(
    private readonly connection: DuckDBConnection,
    private readonly stagingConnection: DuckDBConnection,
    private readonly schema: EventSchema,
    /** The attached database holding the slots' tables. */
    private readonly database: string,
  ) {
    this.decodeEvent = createEventDecoder(schema);
    this.fieldTypes = schema.fields.map((f) => f.type);
  }

  /** Opens the decoder's connections on `instance` and attaches its database; `close` releases them. */
  static async create(instance: DuckDBInstance, schema: EventSchema): Promise<MicroBatchDecoder> {
    const connection = await instance.connect();
    const stagingConnection = await instance.connect();
    try {
      const database = `speed_decoded_${randomBytes(6).toString('hex')}`;
      await connection.run(`ATTACH ':memory:' AS ${quoteIdent(database)}`);
      return new MicroBatchDecoder(connection, stagingConnection, schema, database);
    } catch (error) {
      stagingConnection.closeSync();
      connection.closeSync();
      throw error;
    }
  }

  /** Waits for the work in progress, then detaches the decoder's database and closes its connections. */
  async close(): Promise<void> {
    await this.stagingLock.runExclusive(async () => this.stagingConnection.closeSync());
    await this.decodeLock.runExclusive(async () => {
      // Ignored: a failed DETACH only leaves an empty in-memory database until the instance closes; it must not keep the connection open or hide a failed start's error.
      await this.connection.run(`DETACH ${quoteIdent(this.database)}`).catch(() => undefined);
      this.connection.closeSync();
    });
  }

  /** Decodes the records of `runs` in a free slot; its relation stays valid until `release`. */
  async decode(runs: readonly RecordRun[]): Promise<DecodedMicroBatch> {
    let slot = 0;
    while (this.held.has(slot)) slot++;
    this.held.add(slot);
    try {
      const { staging, events } = this.slot(slot);
      const staged = await this.stagingLock.runExclusive(() => staging.load(runs, events));
      // Every record read in JavaScript: nothing is left for DuckDB to decode.
      if (staged.raw === 0) return this.decodedInJavaScript(slot, staged.events!);
      return await this.decodeLock.runExclusive(() => this.decodeStaged(slot, runs));
    } catch (error) {
      this.held.delete(slot);
      throw error;
    }
  }

  /** The caller is done with `decoded` (committed, or replaced): its slot may be used again. */
  release(decoded: DecodedMicroBatch): void {
    this.held.delete(decoded.slot);
  }

  private slot(index: number): Slot {
    let slot = this.slots[index];
    if (!slot) {
      const staging = new RawStaging(this.stagingConnection, this.database, `speed_raw_${index}`);
      const table = `${DECODED_EVENTS_TABLE}_${index}`;
      const events = new EventStaging(this.stagingConnection, this.database, table, this.schema);
      slot = { staging, events, table, decodeSql: this.decodeSql(staging, table) };
      this.slots[index] = slot;
    }
    return slot;
  }

  /** `table` qualified with the decoder's database. */
  private qualified(table: string): string {
    return `${quoteIdent(this.database)}.main.${quoteIdent(table)}`;
  }

  private decodedInJavaScript(slot: number, events: StagedEventCounts): DecodedMicroBatch {
    return { relation: this.relation(this.slot(slot).table), slot, goodCount: events.total, rejected: [], slowPathCount: 0, newestEventMs: events.newestEventMs };
  }

  /** The good events of a slot's table. */
  private relation(table: string): string {
    return `(SELECT * EXCLUDE (_fast, _general) FROM ${this.qualified(table)} WHERE _fast)`;
  }

  private async decodeStaged(slot: number, runs: readonly RecordRun[]): Promise<DecodedMicroBatch> {
    const { staging, table, decodeSql } = this.slot(slot);
    const rows = (await this.connection.runAndReadAll(decodeSql)).getRows() as [number, number, number | null, DuckDBListValue | null][];
    staging.emptied();
    let goodCount = 0;
    const newestEventMs = new Map<number, number>();
    const slowRows: number[] = [];
    for (const [partition, good, newestMs, slow] of rows) {
      goodCount += good;
      if (newestMs !== null) newestEventMs.set(partition, newestMs);
      if (slow) slowRows.push(...(slow.items as number[]));
    }
    // In arrival order, so that the newest rejected records are the last ones.
    const slow = await this.decodeSlowPath(table, runs, slowRows.sort((a, b) => a - b));
    for (const [partition, eventMs] of slow.newestEventMs) newestEventMs.set(partition, Math.max(newestEventMs.get(partition) ?? eventMs, eventMs));
    return {
      relation: this.relation(table),
      slot,
      goodCount: goodCount + slow.goodCount,
      rejected: slow.rejected,
      slowPathCount: slowRows.length,
      newestEventMs,
    };
  }

  /**
   * Decode the raw records into `table` (beside the events EventStaging put there), empty the
   * staging table, and read per partition what the speed layer needs. The canonical lane takes
   * the rows in the form producers write; the general route only the rest (`_general`), whose
   * lane rows then stay in the table as placeholders, neither fast nor left to the slow path.
   */
  private decodeSql(staging: RawStaging, table: string): string {
    const passthrough = ['_row', '_partition', '_offset', '_kafka_ts'];
    const qualified = this.qualified(table);
    const lane = canonicalLaneSql(this.schema, staging.relation(), { rawColumn: 'raw', passthrough });
    const ts = quoteIdent(this.schema.timestampField);
    const summary = `SELECT _partition, (count(*) FILTER (WHERE _fast))::DOUBLE, epoch_ms(max(${ts}) FILTER (WHERE _fast))::DOUBLE,
              list(_row) FILTER (WHERE NOT _fast AND NOT _general)
       FROM ${qualified} GROUP BY _partition`;
    if (lane === undefined) {
      const decode = jsonDecodeSql(this.schema, staging.relation(), { rawColumn: 'raw', passthrough });
      return [`INSERT INTO ${qualified} BY NAME SELECT *, false AS _general FROM (${decode})`, staging.resetSql(), summary].join(';\n');
    }
    const rest = `(SELECT * FROM ${staging.relation()} WHERE _row IN (SELECT _row FROM ${qualified} WHERE _general))`;
    const general = jsonDecodeSql(this.schema, rest, { rawColumn: 'raw', passthrough });
    return [
      `INSERT INTO ${qualified} BY NAME ${lane}`,
      `INSERT INTO ${qualified} BY NAME SELECT *, false AS _general FROM (${general})`,
      staging.resetSql(),
      // Per partition: good events, the newest event time, and the rows left to the slow path.
      summary,
    ].join(';\n');
  }

  /**
   * Decodes the rows DuckDB passed over (`rows`: their `_row`, ascending); good ones join the
   * decoded table, the rest are returned.
   */
  private async decodeSlowPath(
    table: string,
    runs: readonly RecordRun[],
    rows: readonly number[],
  ): Promise<{ goodCount: number; rejected: RejectedRecord[]; newestEventMs: Map<number, number> }> {
    const rejected: RejectedRecord[] = [];
    const newestEventMs = new Map<number, number>();
    let goodCount = 0;
    if (rows.length === 0) return { goodCount, rejected, newestEventMs };
    const appender = await this.connection.createAppender(table, 'main', this.database);
    try {
      // `_row` counts the records of the runs in order: walk the runs alongside.
      let run = 0;
      let runStart = 0;
      for (const row of rows) {
        while (row >= runStart + runLength(runs[run]!)) runStart += runLength(runs[run++]!);
        const record = runRecord(runs[run]!, row - runStart);
        const result = this.decodeEvent(record.value);
        if (!result.ok) {
          rejected.push({ record, reason: result.reason, message: result.message });
          continue;
        }
        appender.appendInteger(row);
        appender.appendInteger(record.partition);
        appender.appendBigInt(BigInt(record.offset));
        appender.appendTimestamp(new DuckDBTimestampValue(BigInt(Math.trunc(record.timestampMs)) * 1000n));
        appendFieldValues(appender, this.fieldTypes, result.event.values);
        appender.appendBoolean(true);
        appender.appendBoolean(false);
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
