import { randomBytes } from 'node:crypto';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Crash-safe file publication (DESIGN.md, "Storage"): write under a temp name, fsync the file,
 * rename it into place, fsync the directory. After a crash a reader sees the old state or the
 * new one, never a torn file; leftover temp files never match a final name's pattern.
 */

/** A temp name beside `finalPath` that no reader's pattern (`*.parquet`, `*.json`) matches. */
export function tempPathFor(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** True for names made by `tempPathFor`. */
export function isTempFileName(fileName: string): boolean {
  return fileName.startsWith('.') && /\.tmp-\d+-[0-9a-f]{8}$/.test(fileName);
}

export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsyncs `tempPath`, renames it to `finalPath` (replacing a file there) and fsyncs the directory. */
export async function publishFile(tempPath: string, finalPath: string): Promise<void> {
  await fsyncPath(tempPath);
  await rename(tempPath, finalPath);
  await fsyncPath(dirname(finalPath));
}

/** Writes `data` to `finalPath` atomically and durably. */
export async function writeFileDurably(finalPath: string, data: string | Buffer): Promise<void> {
  const temp = tempPathFor(finalPath);
  try {
    await writeFile(temp, data);
    await publishFile(temp, finalPath);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
