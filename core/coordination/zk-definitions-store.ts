import { parsePublishedDefinitions, serializePublishedDefinitions, type Definitions, type PublishedDefinitions } from '../definitions/definitions.ts';
import { ConflictError, CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { conflictMessage, type DefinitionsStore } from './definitions-store.ts';
import { isZkError } from './zk-client.ts';
import { watchZnode } from './zk-node-watch.ts';
import type { ZkSession } from './zk-session.ts';

/**
 * `<root>/definitions` in ZooKeeper: one znode holding the whole set as JSON, with its version
 * inside. A change is a conditional write at the znode version just read (create when absent),
 * so a concurrent change makes it fail with BADVERSION (NODEEXISTS for two seeds) and nothing is
 * written; one znode is replaced whole, so a lost connection leaves the old set or the new one.
 * Every call is bounded by ZkClient's operation timeout.
 */
export class ZkDefinitionsStore implements DefinitionsStore {
  readonly path: string;

  constructor(
    private readonly session: ZkSession,
    /** The cluster root (config zookeeper.root). */
    readonly root: string,
    private readonly logger: Logger,
  ) {
    this.path = `${root}/definitions`;
  }

  async current(): Promise<PublishedDefinitions | undefined> {
    const node = await this.session.client.get(this.path);
    return node && node.data.length > 0 ? parsePublishedDefinitions(node.data) : undefined;
  }

  async publish(definitions: Definitions, expectedVersion: number): Promise<PublishedDefinitions> {
    const client = this.session.client;
    const published: PublishedDefinitions = { version: expectedVersion + 1, definitions, publishedAtMs: Date.now() };
    try {
      const existing = await client.get(this.path);
      const currentVersion = existing && existing.data.length > 0 ? parsePublishedDefinitions(existing.data).version : 0;
      if (currentVersion !== expectedVersion) throw new ConflictError(conflictMessage(expectedVersion, currentVersion), { context: { expectedVersion, currentVersion } });
      const data = serializePublishedDefinitions(published);
      if (existing) {
        await client.set(this.path, data, existing.version);
      } else {
        await client.mkdirp(this.root);
        await client.create(this.path, data, 'persistent');
      }
    } catch (error) {
      if (isZkError(error, 'BADVERSION') || isZkError(error, 'NODEEXISTS')) {
        const currentVersion = (await this.current().catch(() => undefined))?.version;
        throw new ConflictError(conflictMessage(expectedVersion, currentVersion), { context: { expectedVersion, currentVersion } });
      }
      // A lost connection or session: retrying is safe, since a change already applied now conflicts.
      if (error instanceof CoordinationError) {
        throw new CoordinationError(
          `cannot publish definitions version ${published.version}: ZooKeeper did not answer (${error.message}); the set is replaced whole or not at all, and lambda get definitions shows which`,
          { retriable: true, cause: error, context: { path: this.path, version: published.version } },
        );
      }
      throw error;
    }
    this.logger.info({ version: published.version, path: this.path }, 'published definitions');
    return published;
  }

  watch(listener: (published: PublishedDefinitions) => void): () => void {
    let lastVersion = 0;
    return watchZnode(
      this.session,
      this.path,
      (data) => {
        const published = parsePublishedDefinitions(data);
        if (published.version <= lastVersion) return;
        lastVersion = published.version;
        listener(published);
      },
      this.logger,
    );
  }
}
