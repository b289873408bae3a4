import { access, mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../core/observability/logger.ts';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * Before node-local dirs, the alert store (state, history, outbox) was `<storage.dir>/alerts/`.
 * A single node upgraded in place moves it into its local dir, once, so that it finds its alert
 * state and undelivered notifications again. In a cluster the shared file belongs to no node in
 * particular: it is left where it is, with a warning naming it.
 */
export async function adoptLegacyAlertStore(options: { storageDir: string; localDir: string; cluster: boolean; logger: Logger }): Promise<void> {
  const legacyDir = join(options.storageDir, 'alerts');
  const legacy = join(legacyDir, 'alerts.duckdb');
  if (!(await exists(legacy))) return;
  const targetDir = join(options.localDir, 'alerts');
  const target = join(targetDir, 'alerts.duckdb');
  if (options.cluster || (await exists(target))) {
    options.logger.warn({ legacy, current: target }, `an alert store from before node-local dirs is ignored: ${legacy}; move it to ${targetDir} of the node that should keep it`);
    return;
  }
  await mkdir(targetDir, { recursive: true });
  // The write-ahead log first: a store without its WAL would lose the last commits.
  if (await exists(`${legacy}.wal`)) await rename(`${legacy}.wal`, `${target}.wal`);
  await rename(legacy, target);
  options.logger.info({ from: legacy, to: target }, 'moved the alert store into this node\'s local dir');
}
