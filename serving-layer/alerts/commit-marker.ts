import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from '../../core/sql/identifiers.ts';

/**
 * Tells, once a transaction on the serving database has ended, whether it committed, without a
 * hook after the commit: `mark` writes a new token into a one-row table inside the transaction,
 * and any connection reads that token back only once (and if) the transaction committed.
 * Alert rules staged inside the speed layer's transaction (Alerting.applyDefinitions) take effect
 * when it did, and are undone when it rolled back.
 */
export class CommitMarker {
  private lastToken = 0;

  private constructor(private readonly table: string) {}

  static async create(connection: DuckDBConnection, name: string): Promise<CommitMarker> {
    const marker = new CommitMarker(quoteIdent(name));
    await connection.run(`CREATE OR REPLACE TABLE ${marker.table} AS SELECT 0::BIGINT AS token`);
    return marker;
  }

  /** Writes a new token in the caller's open transaction; returns it. */
  async mark(connection: DuckDBConnection): Promise<number> {
    const token = ++this.lastToken;
    await connection.run(`UPDATE ${this.table} SET token = ${token}`);
    return token;
  }

  /** Whether the transaction that wrote `token` has committed, as `connection` sees it. */
  async committed(connection: DuckDBConnection, token: number): Promise<boolean> {
    const [[seen]] = (await connection.runAndReadAll(`SELECT max(token) FROM ${this.table}`)).getRowsJS() as [[bigint | null]];
    return seen !== null && Number(seen) >= token;
  }
}
