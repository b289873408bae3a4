import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isTempFileName } from '../core/storage/durable-files.ts';
import { isNotFound, listDir } from '../core/storage/list-dir.ts';
import type { StorageLayout } from '../core/storage/storage-layout.ts';

const VERSION_DIR = /^v(\d{8})$/;

/** Version numbers that have a directory under `batch/`, ascending. */
export async function versionsOnDisk(layout: StorageLayout): Promise<number[]> {
  return (await listDir(layout.batchDir()))
    .map((n) => VERSION_DIR.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The version a new run writes: above every version published or left on disk. */
export async function nextVersion(layout: StorageLayout, publishedVersion: number | undefined): Promise<number> {
  const onDisk = await versionsOnDisk(layout);
  return Math.max(publishedVersion ?? 0, onDisk.at(-1) ?? 0) + 1;
}

/**
 * Keeps the `keep` newest versions at or below the published one (serving nodes may still be
 * loading the previous ones) and any above it (being written or published right now), and
 * removes the rest, plus temp directories a crashed run left more than `staleTempMs` ago.
 * Returns the versions removed.
 */
export async function retainVersions(
  layout: StorageLayout,
  options: { keep: number; publishedVersion: number; staleTempMs?: number },
): Promise<number[]> {
  const versions = await versionsOnDisk(layout);
  const atOrBelow = versions.filter((v) => v <= options.publishedVersion);
  const doomed = atOrBelow.slice(0, Math.max(0, atOrBelow.length - options.keep));
  await Promise.all(doomed.map((v) => rm(layout.versionDir(v), { recursive: true, force: true })));
  const staleBeforeMs = Date.now() - (options.staleTempMs ?? 3_600_000);
  for (const name of await readdir(layout.batchDir())) {
    if (!isTempFileName(name)) continue;
    const path = join(layout.batchDir(), name);
    const info = await stat(path).catch((error: unknown) => {
      if (isNotFound(error)) return undefined; // removed meanwhile by another node's retention pass
      throw error;
    });
    if (info && info.mtimeMs < staleBeforeMs) await rm(path, { recursive: true, force: true });
  }
  return doomed;
}
