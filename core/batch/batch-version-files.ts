import { isAbsolute, join } from 'node:path';
import type { BatchManifest } from './batch-manifest.ts';

/**
 * Where a published batch version's files are. The manifest names them relative to
 * `storage.dir` (`batch/v00000007/page_traffic.parquet`), so the same manifest works on every
 * node that mounts the storage, wherever it is mounted.
 */
export function batchViewFile(storageDir: string, manifest: BatchManifest, view: string): string | undefined {
  const entry = manifest.views[view];
  if (!entry) return undefined;
  return isAbsolute(entry.file) ? entry.file : join(storageDir, entry.file);
}

export function batchVersionDir(storageDir: string, manifest: BatchManifest): string {
  return isAbsolute(manifest.location) ? manifest.location : join(storageDir, manifest.location);
}
