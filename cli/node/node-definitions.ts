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

/** How a node runs a definitions version without a restart: every part that depends on them follows. */
export type RunDefinitions = (loaded: LoadedConfig, version: number) => Promise<void>;

/**
 * Follows the published definitions (issue 16): each newer version is checked against this
 * node's file (as at start) and run by `run`, one version at a time, the newest first when
 * several arrived meanwhile. A version that cannot run now (e.g. `events` lags, ZooKeeper is
 * away) is retried every `retryMs`; one that this node cannot run at all (its definitions do not
 * bind with this node's file) is logged and skipped until a newer one is published.
 */
export function followDefinitions(options: {
  readonly store: DefinitionsStore;
  readonly fileConfig: LoadedConfig;
  readonly runningVersion: number;
  readonly run: RunDefinitions;
  readonly logger: Logger;
  readonly retryMs?: number;
}): DefinitionsFollower {
  const { store, fileConfig, run, logger } = options;
  /** The newest version run or given up on. */
  let handled = options.runningVersion;
  let newest: PublishedDefinitions | undefined;
  let busy = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  const next = async (): Promise<void> => {
    if (busy || stopped || !newest || newest.version <= handled) return;
    busy = true;
    const target = newest;
    try {
      const loaded = await loadWithDefinitions(fileConfig, target.definitions);
      await run(loaded, target.version);
      handled = target.version;
    } catch (error) {
      if (error instanceof ConfigError) {
        logger.error({ err: error, definitionsVersion: target.version }, `definitions version ${target.version} does not bind with this node's config; it keeps running what it runs`);
        handled = target.version;
      } else {
        logger.warn({ err: error, definitionsVersion: target.version }, `cannot run definitions version ${target.version} yet; retrying`);
        clearTimeout(retryTimer);
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          void next();
        }, options.retryMs ?? 2_000);
        retryTimer.unref();
      }
    } finally {
      busy = false;
    }
    if (newest.version > handled && !retryTimer) void next();
  };
  const unwatch = store.watch((published) => {
    if (!newest || published.version > newest.version) newest = published;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    void next();
  });
  return {
    stop: () => {
      stopped = true;
      clearTimeout(retryTimer);
      unwatch();
    },
    newest: () => newest,
  };
}

export interface DefinitionsFollower {
  stop(): void;
  /** The newest version published that this node has seen (it may not run it yet). */
  newest(): PublishedDefinitions | undefined;
}
