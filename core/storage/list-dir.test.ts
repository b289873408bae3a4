import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDir } from './list-dir.ts';

describe('listDir', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'list-dir-'));
    await writeFile(join(dir, 'a.parquet'), '');
    await writeFile(join(dir, 'b.gap'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('lists the names in a directory', async () => {
    expect((await listDir(dir)).sort()).toEqual(['a.parquet', 'b.gap']);
  });

  it('lists nothing for a directory that does not exist', async () => {
    expect(await listDir(join(dir, 'p7'))).toEqual([]);
  });

  it('throws when the path exists but cannot be listed (a file, not a directory)', async () => {
    await expect(listDir(join(dir, 'a.parquet'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});
