import { readdir } from 'node:fs/promises';

/** The names in `dir`, or none when `dir` does not exist (yet): a partition or batch directory appears with its first file. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if (isNotFound(error)) return [];
    throw error;
  }
}

/** True for the error of a file system call on a path that does not exist. */
export function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
