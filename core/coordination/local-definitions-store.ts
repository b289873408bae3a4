import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parsePublishedDefinitions, serializePublishedDefinitions, type Definitions, type PublishedDefinitions } from '../definitions/definitions.ts';
import { ConflictError } from '../errors/index.ts';
import { writeFileDurably } from '../storage/durable-files.ts';
import type { StorageLayout } from '../storage/storage-layout.ts';
import { conflictMessage, type DefinitionsStore } from './definitions-store.ts';
import { LocalWatchers } from './local-watchers.ts';

/**
 * Single-node mode's definitions: `<storage.dir>/definitions.json`, replaced atomically. Changes
 * are checked and written one at a time within this process (single-node mode has one writer).
 * This process's watchers hear its publications at once; the poll catches writes by other
 * processes (`lambda apply` run against the directory).
 */
export class LocalDefinitionsStore implements DefinitionsStore {
  readonly path: string;
  private publishing: Promise<unknown> = Promise.resolve();
  private readonly watchers: LocalWatchers<PublishedDefinitions>;

  constructor(layout: StorageLayout, pollIntervalMs = 1_000) {
    this.path = join(layout.rootDir, 'definitions.json');
    this.watchers = new LocalWatchers(() => this.current(), pollIntervalMs);
  }

  async current(): Promise<PublishedDefinitions | undefined> {
    try {
      return parsePublishedDefinitions(await readFile(this.path));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  publish(definitions: Definitions, expectedVersion: number): Promise<PublishedDefinitions> {
    const run = this.publishing.then(async () => {
      const currentVersion = (await this.current())?.version ?? 0;
      if (currentVersion !== expectedVersion) throw new ConflictError(conflictMessage(expectedVersion, currentVersion), { context: { expectedVersion, currentVersion } });
      const published: PublishedDefinitions = { version: expectedVersion + 1, definitions, publishedAtMs: Date.now() };
      await mkdir(dirname(this.path), { recursive: true });
      await writeFileDurably(this.path, serializePublishedDefinitions(published));
      this.watchers.published(published);
      return published;
    });
    // The caller gets the failure through `run`; this chain only orders the changes.
    this.publishing = run.catch(() => undefined);
    return run;
  }

  watch(listener: (published: PublishedDefinitions) => void): () => void {
    return this.watchers.watch(listener);
  }
}
