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
  const raw = { ...base.raw, views: definitions.views, alerts: definitions.alerts };
  const loaded = validateConfig(raw);
  // Binding depends on the document alone: one this process bound already binds again. A node
  // that validated a change before publishing it then runs it without binding it twice (on a
  // fresh DuckDB, ~70 ms idle, several times that beside a busy speed layer).
  const key = JSON.stringify(raw);
  if (!BOUND.has(key)) {
    await bindInMemory(loaded);
    BOUND.add(key);
    if (BOUND.size > MAX_BOUND) BOUND.delete(BOUND.values().next().value!);
  }
  return base.file ? { ...loaded, file: base.file } : loaded;
}

/** Documents (config with definitions) this process bound without error, the newest last. */
const BOUND = new Set<string>();
const MAX_BOUND = 32;

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
