import { stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { holdsViewAsDefined, type BatchManifest } from './batch-manifest.ts';

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

/**
 * True when `next` holds `view` (as `definitionHash` defines it) in the very file `applied` holds
 * it in: a backfill run hard-links the state of the views it did not recompute. What was loaded
 * from `applied` is then `next`'s state too. False whenever that cannot be seen (a copy, a file
 * gone): the caller loads the state again, which is always right.
 */
export async function sameStateFile(storageDir: string, applied: BatchManifest, next: BatchManifest, view: string, definitionHash: string): Promise<boolean> {
  if (!holdsViewAsDefined(applied, view, definitionHash) || !holdsViewAsDefined(next, view, definitionHash) || applied.topic !== next.topic) return false;
  const [appliedFile, nextFile] = [batchViewFile(storageDir, applied, view), batchViewFile(storageDir, next, view)];
  if (!appliedFile || !nextFile) return false;
  try {
    const [a, b] = await Promise.all([stat(appliedFile), stat(nextFile)]);
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}
