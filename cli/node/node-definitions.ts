import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { DefinitionsStore } from '../../core/coordination/definitions-store.ts';
import { diffDefinitions, isEmptyDiff, summarizeDiff } from '../../core/definitions/definitions-diff.ts';
import { definitionsOfDocument, type PublishedDefinitions } from '../../core/definitions/definitions.ts';
import { loadWithDefinitions } from '../../core/definitions/validate-definitions.ts';
import { ConfigError, ConflictError } from '../../core/errors/index.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { startupCall } from './coordination.ts';

/**
 * What a starting node runs: the published definitions, not its file's (DESIGN.md, "Definitions
 * are cluster state"). The file's views and alerts seed a store where none are published yet; a
 * file that disagrees with the published set is logged, name by name, and not run.
 */
export async function adoptPublishedDefinitions(loaded: LoadedConfig, store: DefinitionsStore, logger: Logger): Promise<{ loaded: LoadedConfig; version: number }> {
  const published = await startupCall(() => currentOrSeed(loaded, store, logger));
  let running: LoadedConfig;
  try {
    running = await loadWithDefinitions(loaded, published.definitions);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.issues, { file: `the published definitions (version ${published.version}), checked with this node's ${loaded.file ?? 'config'}` });
  }
  const diff = diffDefinitions(loaded.config, running.config);
  if (!isEmptyDiff(diff)) {
    logger.warn(
      { definitionsVersion: published.version, file: loaded.file, diff },
      `this node's config file differs from the published definitions (version ${published.version}); running the published ones. Published vs file: ${summarizeDiff(diff)}`,
    );
  }
  return { loaded: running, version: published.version };
}

async function currentOrSeed(loaded: LoadedConfig, store: DefinitionsStore, logger: Logger): Promise<PublishedDefinitions> {
  const current = await store.current();
  if (current) return current;
  try {
    const seeded = await store.publish(definitionsOfDocument(loaded.raw), 0);
    logger.info({ definitionsVersion: seeded.version, file: loaded.file }, "seeded the definitions from this node's config file");
    return seeded;
  } catch (error) {
    // Another node seeded first: follow it.
    if (!(error instanceof ConflictError)) throw error;
    const winner = await store.current();
    if (!winner) throw error;
    return winner;
  }
}

/** Phase 1 of issue 16: a new version is run after a restart; say so when one is published. */
export function warnWhenBehind(store: DefinitionsStore, runningVersion: number, logger: Logger): () => void {
  return store.watch((published) => {
    if (published.version <= runningVersion) return;
    logger.warn(
      { definitionsVersion: published.version, runningVersion },
      `definitions version ${published.version} published; this node runs ${runningVersion}; restart it to run ${published.version}`,
    );
  });
}
