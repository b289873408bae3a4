import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DuckDBTimestampValue, type DuckDBAppender, type DuckDBConnection } from '@duckdb/node-api';
import { inTransaction } from '../../core/duckdb/in-transaction.ts';
import { SerialLock } from '../../core/duckdb/serial-lock.ts';
import { quoteIdent, quoteLiteral } from '../../core/sql/identifiers.ts';
import type { AlertRecord, NewAlertRecord } from './alert-record.ts';
import type { AlertStatus } from './alert-state.ts';
import { parsePosition, type DeliveryPosition, type DeliveryWatermarks } from './delivery-watermarks.ts';

/** What the store needs of the serving database: a new connection to the same DuckDB instance. */
export interface DuckDBConnector {
  connect(): Promise<DuckDBConnection>;
}

export interface AlertStoreOptions {
  /** The DuckDB file (e.g. `<storage.dir>/alerts/alerts.duckdb`), or ':memory:' for tests. */
  readonly file: string;
  /** Name the file is attached under (default `lambda_alerts`). */
  readonly catalog?: string;
}

const HISTORY_COLUMNS = `seq BIGINT PRIMARY KEY, id VARCHAR NOT NULL, alert VARCHAR NOT NULL, key JSON NOT NULL,
  state VARCHAR NOT NULL, reminder BOOLEAN NOT NULL, notify BOOLEAN NOT NULL, value JSON,
  window_start TIMESTAMP, window_end TIMESTAMP, since TIMESTAMP NOT NULL, severity VARCHAR NOT NULL,
  labels JSON NOT NULL, recorded_at TIMESTAMP NOT NULL, reason VARCHAR`;

const SELECT_RECORD = `seq, id, alert, key::VARCHAR, state, reminder, notify, value::VARCHAR, epoch_ms(window_start),
  epoch_ms(window_end), epoch_ms(since), severity, labels::VARCHAR, epoch_ms(recorded_at), reason`;

/**
 * The durable record of every alert transition, in a DuckDB file attached to the serving
 * database: it is the outbox the sinks deliver from (so a sink that is down, or a restart, loses
 * nothing), the state the evaluator restores on start, and `alert_history`, a view in the
 * serving database that users query with SQL. It also keeps this node's delivery positions.
 *
 * One writer per file: the process that opened it. Appends are one transaction per evaluation.
 */
export class AlertStore implements DeliveryWatermarks {
  private readonly lock = new SerialLock();
  private committedSeq: number;
  /** The newest committed record, as a delivery position (what a sink added now starts after). */
  private newest: DeliveryPosition;

  private constructor(
    private readonly connection: DuckDBConnection,
    private readonly catalog: string,
    /** Identifies this store's sequence numbers in delivery positions. */
    readonly storeId: string,
    lastSeq: number,
    /** The newest record when the store was opened (what a sink with no position starts after). */
    readonly openedAt: DeliveryPosition,
  ) {
    this.committedSeq = lastSeq;
    this.newest = openedAt;
  }

  static async open(database: DuckDBConnector, options: AlertStoreOptions): Promise<AlertStore> {
    const catalog = options.catalog ?? 'lambda_alerts';
    if (options.file !== ':memory:') await mkdir(dirname(options.file), { recursive: true });
    const connection = await database.connect();
    try {
      const c = quoteIdent(catalog);
      await connection.run(`ATTACH IF NOT EXISTS ${quoteLiteral(options.file)} AS ${c}`);
      await connection.run(`CREATE TABLE IF NOT EXISTS ${c}.alert_history (${HISTORY_COLUMNS})`);
      // A store written before rules could change in place has no reason column: added last, as appendRecord writes it.
      await connection.run(`ALTER TABLE ${c}.alert_history ADD COLUMN IF NOT EXISTS reason VARCHAR`);
      await connection.run(`CREATE TABLE IF NOT EXISTS ${c}.alert_delivery (sink VARCHAR PRIMARY KEY, position JSON NOT NULL)`);
      await connection.run(`CREATE TABLE IF NOT EXISTS ${c}.alert_store (store_id VARCHAR NOT NULL)`);
      await connection.run(`INSERT INTO ${c}.alert_store SELECT ${quoteLiteral(randomUUID())} WHERE NOT EXISTS (FROM ${c}.alert_store)`);
      await connection.run(`CREATE OR REPLACE VIEW main.alert_history AS SELECT * FROM ${c}.alert_history`);
      const [[storeId]] = (await connection.runAndReadAll(`SELECT store_id FROM ${c}.alert_store LIMIT 1`)).getRowsJS() as [[string]];
      const last = (await connection.runAndReadAll(`SELECT seq, id, epoch_ms(recorded_at) FROM ${c}.alert_history ORDER BY seq DESC LIMIT 1`)).getRowsJS() as [
        bigint,
        string,
        bigint,
      ][];
      const lastSeq = last[0] ? Number(last[0][0]) : 0;
      const openedAt = { storeId, seq: lastSeq, id: last[0]?.[1] ?? '', atMs: last[0] ? Number(last[0][2]) : Date.now() };
      return new AlertStore(connection, catalog, storeId, lastSeq, openedAt);
    } catch (error) {
      connection.closeSync();
      throw error;
    }
  }

  /** The newest sequence number whose append has committed. */
  get lastSeq(): number {
    return this.committedSeq;
  }

  /** The newest committed record as a delivery position: a sink added now starts after it. */
  get newestPosition(): DeliveryPosition {
    return this.newest;
  }

  private table(name: string): string {
    return `${quoteIdent(this.catalog)}.${name}`;
  }

  /** Appends records in one transaction and returns them with their sequence numbers. */
  append(records: readonly NewAlertRecord[]): Promise<AlertRecord[]> {
    if (records.length === 0) return Promise.resolve([]);
    return this.lock.runExclusive(async () => {
      const numbered = records.map((r, i) => ({ ...r, seq: this.committedSeq + 1 + i }));
      await inTransaction(this.connection, async () => {
        const appender = await this.connection.createAppender('alert_history', 'main', this.catalog);
        try {
          for (const record of numbered) appendRecord(appender, record);
          appender.flushSync();
        } finally {
          appender.closeSync();
        }
      });
      const last = numbered.at(-1)!;
      this.committedSeq = last.seq;
      this.newest = { storeId: this.storeId, seq: last.seq, id: last.id, atMs: last.atMs };
      return numbered;
    });
  }

  /** The newest record of every instance that has one (what the evaluator restores). */
  latestPerInstance(): Promise<AlertRecord[]> {
    return this.select(
      `SELECT ${SELECT_RECORD} FROM ${this.table('alert_history')}
       QUALIFY row_number() OVER (PARTITION BY alert, key::VARCHAR ORDER BY seq DESC) = 1 ORDER BY seq`,
    );
  }

  /** Notifications of `alerts` with `afterSeq < seq <= upToSeq`, oldest first. */
  notificationsBetween(afterSeq: number, upToSeq: number, alerts: readonly string[], limit?: number): Promise<AlertRecord[]> {
    if (alerts.length === 0 || upToSeq <= afterSeq) return Promise.resolve([]);
    return this.select(
      `SELECT ${SELECT_RECORD} FROM ${this.table('alert_history')}
       WHERE notify AND seq > ${afterSeq} AND seq <= ${upToSeq} AND alert IN (${alerts.map(quoteLiteral).join(', ')}) ORDER BY seq
       ${limit === undefined ? '' : `LIMIT ${Math.trunc(limit)}`}`,
    );
  }

  /**
   * The sequence number after which the notifications of `alerts` are still to be delivered, given
   * a sink's position, possibly written by another node: exact in this store's own numbering, else
   * found by the notification's id, else everything recorded after `atMs - skewMs`.
   */
  async resumeAfterSeq(position: DeliveryPosition, alerts: readonly string[], skewMs: number): Promise<number> {
    if (position.storeId === this.storeId) return position.seq;
    const inAlerts = alerts.length === 0 ? 'false' : `alert IN (${alerts.map(quoteLiteral).join(', ')})`;
    const byId = await this.lock.runExclusive(async () =>
      (await this.connection.runAndReadAll(`SELECT max(seq) FROM ${this.table('alert_history')} WHERE id = ${quoteLiteral(position.id)} AND ${inAlerts}`)).getRowsJS(),
    );
    if (byId[0]?.[0] != null) return Number(byId[0][0]);
    const byTime = await this.lock.runExclusive(async () =>
      (
        await this.connection.runAndReadAll(
          `SELECT min(seq) - 1 FROM ${this.table('alert_history')} WHERE notify AND ${inAlerts} AND recorded_at > epoch_ms(${Math.trunc(position.atMs - skewMs)}::BIGINT)`,
        )
      ).getRowsJS(),
    );
    return byTime[0]?.[0] != null ? Number(byTime[0][0]) : this.committedSeq;
  }

  /**
   * Deletes the records made before `recordedBeforeMs`, except the notifications after
   * `keepNotificationsAfterSeq` (not yet acknowledged by every sink: the outbox) and the newest
   * record of every pending or firing instance (what `latestPerInstance` restores). Returns the
   * number of records deleted.
   */
  prune(options: { readonly recordedBeforeMs: number; readonly keepNotificationsAfterSeq: number }): Promise<number> {
    const history = this.table('alert_history');
    return this.lock.runExclusive(async () => {
      const result = await this.connection.run(
        `DELETE FROM ${history} WHERE recorded_at < epoch_ms(${Math.trunc(options.recordedBeforeMs)}::BIGINT)
           AND NOT (notify AND seq > ${Math.trunc(options.keepNotificationsAfterSeq)})
           AND seq NOT IN (SELECT seq FROM (SELECT seq, state FROM ${history}
                                            QUALIFY row_number() OVER (PARTITION BY alert, key::VARCHAR ORDER BY seq DESC) = 1)
                           WHERE state IN ('pending', 'firing'))`,
      );
      return result.rowsChanged;
    });
  }

  async read(sinkId: string): Promise<DeliveryPosition | null> {
    const rows = await this.lock.runExclusive(async () =>
      (await this.connection.runAndReadAll(`SELECT position::VARCHAR FROM ${this.table('alert_delivery')} WHERE sink = ${quoteLiteral(sinkId)}`)).getRowsJS(),
    );
    return rows[0] ? parsePosition(String(rows[0][0])) : null;
  }

  write(sinkId: string, position: DeliveryPosition): Promise<void> {
    return this.lock.runExclusive(() =>
      this.connection.run(
        `INSERT OR REPLACE INTO ${this.table('alert_delivery')} VALUES (${quoteLiteral(sinkId)}, ${quoteLiteral(JSON.stringify(position))})`,
      ),
    ).then(() => undefined);
  }

  /** Drops the `alert_history` view and detaches the file. */
  close(): Promise<void> {
    return this.lock.runExclusive(async () => {
      try {
        await this.connection.run('DROP VIEW IF EXISTS main.alert_history');
        await this.connection.run(`DETACH DATABASE IF EXISTS ${quoteIdent(this.catalog)}`);
      } finally {
        this.connection.closeSync();
      }
    });
  }

  private select(sql: string): Promise<AlertRecord[]> {
    return this.lock.runExclusive(async () => ((await this.connection.runAndReadAll(sql)).getRowsJS() as unknown[][]).map(fromRow));
  }
}

/** One row, in the column order of HISTORY_COLUMNS. */
function appendRecord(appender: DuckDBAppender, r: AlertRecord): void {
  const timestamp = (ms: number | null) => (ms === null ? appender.appendNull() : appender.appendTimestamp(new DuckDBTimestampValue(BigInt(Math.trunc(ms)) * 1000n)));
  appender.appendBigInt(BigInt(r.seq));
  appender.appendVarchar(r.id);
  appender.appendVarchar(r.alert);
  appender.appendVarchar(r.keyJson);
  appender.appendVarchar(r.status);
  appender.appendBoolean(r.reminder);
  appender.appendBoolean(r.notify);
  if (r.valueJson === null) appender.appendNull();
  else appender.appendVarchar(r.valueJson);
  timestamp(r.window?.startMs ?? null);
  timestamp(r.window?.endExclusiveMs ?? null);
  timestamp(r.sinceMs);
  appender.appendVarchar(r.severity);
  appender.appendVarchar(JSON.stringify(r.labels));
  timestamp(r.atMs);
  if (r.reason === undefined) appender.appendNull();
  else appender.appendVarchar(r.reason);
  appender.endRow();
}

function num(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function fromRow(row: unknown[]): AlertRecord {
  const [seq, id, alert, keyJson, status, reminder, notify, valueJson, windowStart, windowEnd, since, severity, labels, at, reason] = row;
  const startMs = num(windowStart);
  const endMs = num(windowEnd);
  return {
    seq: Number(seq),
    id: String(id),
    alert: String(alert),
    keyJson: String(keyJson),
    status: status as AlertStatus,
    reminder: Boolean(reminder),
    notify: Boolean(notify),
    valueJson: valueJson === null ? null : String(valueJson),
    window: startMs === null || endMs === null ? null : { startMs, endExclusiveMs: endMs },
    sinceMs: Number(since),
    atMs: Number(at),
    severity: String(severity),
    labels: JSON.parse(String(labels)) as Record<string, string>,
    ...(reason === null || reason === undefined ? {} : { reason: String(reason) }),
  };
}
