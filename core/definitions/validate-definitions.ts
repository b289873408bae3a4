import { DuckDBInstance } from '@duckdb/node-api';
import { validateConfig, type LoadedConfig } from '../config/load-config.ts';
import { bindViews } from '../views/bind-views.ts';
import type { Definitions } from './definitions.ts';

/**
 * `base` (a node's config: source, storage, serving…) running `definitions` instead of its own
 * views and alerts, validated exactly as `lambda check` validates a file: the schema, then every
 * view and alert bound in DuckDB. Throws ConfigError naming each offending key path
 * (`views.x.measures.y`); nothing is published before this passes.
 */
export async function loadWithDefinitions(base: LoadedConfig, definitions: Definitions): Promise<LoadedConfig> {
  const loaded = validateConfig({ ...base.raw, views: definitions.views, alerts: definitions.alerts });
  await bindInMemory(loaded);
  return base.file ? { ...loaded, file: base.file } : loaded;
}

/** Binds the views and alerts on a throwaway in-memory database (as `lambda start` and `check` do). */
export async function bindInMemory(loaded: LoadedConfig): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const connection = await instance.connect();
    try {
      await bindViews(loaded, connection);
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}
