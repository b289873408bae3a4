import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { validateConfig, type LoadedConfig } from '../config/load-config.ts';
import { installSqlMacros } from '../duckdb/sql-macros.ts';
import { bindViews } from '../views/bind-views.ts';
import type { Definitions } from './definitions.ts';

/**
 * `base` (a node's config: source, storage, serving…) running `definitions` instead of its own
 * views and alerts, validated exactly as `lambda check` validates a file: the schema, then every
 * view and alert bound in DuckDB. Throws ConfigError naming each offending key path
 * (`views.x.measures.y`); nothing is published before this passes.
 */
export async function loadWithDefinitions(base: LoadedConfig, definitions: Definitions): Promise<LoadedConfig> {
  const raw = { ...base.raw, views: definitions.views, alerts: definitions.alerts };
  const loaded = validateConfig(raw);
  await bindInMemory(loaded);
  return base.file ? { ...loaded, file: base.file } : loaded;
}

/**
 * One in-memory database, its macros installed, on which this process validates definitions, one
 * bind at a time (a bind creates and drops its probe table): a validation then costs the binding
 * of what is new in the document, not a DuckDB started for it (~10-50 ms idle, more beside a busy
 * speed layer).
 */
let validator: Promise<DuckDBConnection> | undefined;
let validations: Promise<unknown> = Promise.resolve();

/** Binds the views and alerts as `lambda start` and `check` do, on this process's validation database. */
export function bindInMemory(loaded: LoadedConfig): Promise<void> {
  const bind = validations.then(async () => {
    validator ??= openValidator();
    const connection = await validator.catch((error: unknown) => {
      validator = undefined;
      throw error;
    });
    await bindViews(loaded, connection, { macrosInstalled: true });
  });
  validations = bind.catch(() => undefined);
  return bind;
}

async function openValidator(): Promise<DuckDBConnection> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const connection = await instance.connect();
  await installSqlMacros(connection);
  return connection;
}
