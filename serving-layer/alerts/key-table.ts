import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent, quoteLiteral } from '../../core/sql/identifiers.ts';
import { ACTIVE_KEY_COLUMN } from './alert-query.ts';

/**
 * A temp table of instance keys (key JSON strings) on one connection, for queries to join
 * against: a rule's pending and firing instances, or the instances whose values are wanted.
 */
export class KeyTable {
  private constructor(
    private readonly connection: DuckDBConnection,
    private readonly name: string,
  ) {}

  static async create(connection: DuckDBConnection, name: string): Promise<KeyTable> {
    await connection.run(`CREATE OR REPLACE TEMP TABLE ${quoteIdent(name)} (${quoteIdent(ACTIVE_KEY_COLUMN)} VARCHAR)`);
    return new KeyTable(connection, name);
  }

  /** The table as SQL names it. */
  get sql(): string {
    return `temp.main.${quoteIdent(this.name)}`;
  }

  async add(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const appender = await this.connection.createAppender(this.name, 'main', 'temp');
    try {
      for (const key of keys) {
        appender.appendVarchar(key);
        appender.endRow();
      }
      appender.flushSync();
    } finally {
      appender.closeSync();
    }
  }

  async remove(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1_000) {
      const chunk = keys.slice(i, i + 1_000).map(quoteLiteral).join(', ');
      await this.connection.run(`DELETE FROM ${this.sql} WHERE ${quoteIdent(ACTIVE_KEY_COLUMN)} IN (${chunk})`);
    }
  }

  /** Drops the table (its rule is no longer evaluated). */
  async drop(): Promise<void> {
    await this.connection.run(`DROP TABLE IF EXISTS ${this.sql}`);
  }

  async replace(keys: readonly string[]): Promise<void> {
    await this.connection.run(`DELETE FROM ${this.sql}`);
    await this.add(keys);
  }
}
