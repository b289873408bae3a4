import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseBatchManifest, serializeBatchManifest, type BatchManifest } from '../batch/batch-manifest.ts';
import { CoordinationError } from '../errors/index.ts';
import { writeFileDurably } from '../storage/durable-files.ts';
import type { StorageLayout } from '../storage/storage-layout.ts';
import type { BatchManifestStore } from './batch-manifest-store.ts';
import type { Leadership } from './leadership.ts';
import { LocalWatchers } from './local-watchers.ts';

/**
 * Single-node mode's `batch/current`: `<storage.dir>/batch/current.json`, replaced atomically.
 * This process's watchers hear its publications at once; the others are found by polling (cheap:
 * one small read), which also works across processes sharing the dir.
 */
export class LocalBatchManifestStore implements BatchManifestStore {
  readonly path: string;
  private publishing: Promise<unknown> = Promise.resolve();
  private readonly watchers: LocalWatchers<BatchManifest>;

  constructor(layout: StorageLayout, pollIntervalMs = 250) {
    this.path = join(layout.batchDir(), 'current.json');
    this.watchers = new LocalWatchers(() => this.current(), pollIntervalMs);
  }

  async current(): Promise<BatchManifest | undefined> {
    try {
      return parseBatchManifest(await readFile(this.path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  publish(manifest: BatchManifest, leadership: Leadership): Promise<void> {
    const run = this.publishing.then(async () => {
      if (leadership.signal.aborted) throw new CoordinationError(`not publishing batch version ${manifest.version}: no longer the batch master`);
      const published = await this.current();
      if (published && published.version >= manifest.version) {
        throw new CoordinationError(`not publishing batch version ${manifest.version}: version ${published.version} is already published`);
      }
      await mkdir(dirname(this.path), { recursive: true });
      await writeFileDurably(this.path, serializeBatchManifest(manifest));
      this.watchers.published(manifest);
    });
    // Ignored here: the caller gets the failure through `run`; this chain only orders publications.
    this.publishing = run.catch(() => undefined);
    return run;
  }

  watch(listener: (manifest: BatchManifest) => void): () => void {
    return this.watchers.watch(listener);
  }
}
