import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy, ZooKeeperTestServer } from '../../test/harness/index.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import type { Definitions } from '../definitions/definitions.ts';
import { ConflictError, CoordinationError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { StorageLayout } from '../storage/storage-layout.ts';
import type { DefinitionsStore } from './definitions-store.ts';
import { LocalDefinitionsStore } from './local-definitions-store.ts';
import { ZkDefinitionsStore } from './zk-definitions-store.ts';
import { ZkSession } from './zk-session.ts';

const logger = createLogger('definitions-store-test', { level: 'error' });

function definitions(tag: string): Definitions {
  return { views: { [`v_${tag}`]: { window: '1m', measures: { n: 'count(*)' } } }, alerts: {} };
}

interface Fixture {
  store: DefinitionsStore;
  /** A second writer, as another node (or process) would be. */
  other: DefinitionsStore;
  dispose(): Promise<void>;
}

/** One contract, every implementation: ZooKeeper in a cluster, a file single-node. */
const implementations: Record<string, () => Promise<Fixture>> = {
  local: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'definitions-store-'));
    // One store object: single-node mode has one writer process, which orders its changes.
    const store = new LocalDefinitionsStore(new StorageLayout(dir), 20);
    return { store, other: store, dispose: async () => rmSync(dir, { recursive: true, force: true }) };
  },
  zookeeper: async () => {
    const root = `/defs-${randomBytes(4).toString('hex')}`;
    const sessions = await Promise.all([0, 1].map(() => ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger })));
    return {
      store: new ZkDefinitionsStore(sessions[0]!, root, logger),
      other: new ZkDefinitionsStore(sessions[1]!, root, logger),
      dispose: async () => void (await Promise.all(sessions.map((s) => s.close()))),
    };
  },
};

let server: ZooKeeperTestServer;
beforeAll(async () => {
  server = await ZooKeeperTestServer.start();
});
afterAll(async () => {
  await server?.stop();
});

for (const [name, create] of Object.entries(implementations)) {
  describe(`DefinitionsStore contract: ${name}`, () => {
    let fixture: Fixture;
    beforeAll(async () => {
      fixture = await create();
    });
    afterAll(async () => {
      await fixture?.dispose();
    });

    it('has nothing before the first publication', async () => {
      expect(await fixture.store.current()).toBeUndefined();
    });

    it('publishes the seed as version 1, which another writer reads back whole', async () => {
      const published = await fixture.store.publish(definitions('seed'), 0);
      expect(published.version).toBe(1);
      const read = await fixture.other.current();
      expect(read?.version).toBe(1);
      expect(read?.definitions).toEqual(definitions('seed'));
    });

    it('refuses a change made against a version that is not current, writing nothing', async () => {
      await expect(fixture.other.publish(definitions('late seed'), 0)).rejects.toBeInstanceOf(ConflictError);
      await expect(fixture.store.publish(definitions('from the future'), 5)).rejects.toThrow(/made against version 5, but they are at version 1 now/);
      expect((await fixture.store.current())?.definitions).toEqual(definitions('seed'));
    });

    it('of two changes made against one version, exactly one wins; the other is told of the conflict', async () => {
      const outcomes = await Promise.allSettled([fixture.store.publish(definitions('a'), 1), fixture.other.publish(definitions('b'), 1)]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(ConflictError);
      const winner = outcomes[0]!.status === 'fulfilled' ? definitions('a') : definitions('b');
      expect(await fixture.store.current()).toMatchObject({ version: 2, definitions: winner });
    });

    it('tells a watcher the current version at once, then newer ones in order, once each', async () => {
      const seen: number[] = [];
      const stop = fixture.other.watch((p) => seen.push(p.version));
      await waitFor('current version seen', () => seen.includes(2));
      await fixture.store.publish(definitions('c'), 2);
      await waitFor('version 3 seen', () => seen.includes(3));
      stop();
      expect(seen).toEqual([2, 3]);
    });
  });
}

describe('ZkDefinitionsStore with ZooKeeper unreachable', () => {
  it('fails a publish with a retriable error within the operation timeout, and writes nothing', async () => {
    const root = `/defs-cut-${randomBytes(4).toString('hex')}`;
    const proxy = await TcpProxy.start({ port: server.port });
    const session = await ZkSession.open({ connectString: proxy.address, sessionTimeoutMs: 4_000, logger });
    const direct = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 4_000, logger });
    const store = new ZkDefinitionsStore(session, root, logger);
    const observer = new ZkDefinitionsStore(direct, root, logger);
    try {
      await store.publish(definitions('before'), 0);
      proxy.cut('blackhole');
      const failure = await store.publish(definitions('during the cut'), 1).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(CoordinationError);
      expect((failure as CoordinationError).retriable).toBe(true);
      expect((failure as Error).message).toMatch(/cannot publish definitions version 2: ZooKeeper did not answer/);
      expect(await observer.current()).toMatchObject({ version: 1, definitions: definitions('before') });
      proxy.restore();
      // Once reachable again, the same change goes through against the unchanged version.
      await waitFor('the session back', () => session.client.state === 'connected', 15_000);
      expect((await store.publish(definitions('after'), 1)).version).toBe(2);
    } finally {
      proxy.restore();
      await session.close();
      await direct.close();
      await proxy.stop();
    }
  }, 60_000);
});
