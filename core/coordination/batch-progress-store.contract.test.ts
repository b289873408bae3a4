import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZooKeeperTestServer } from '../../test/harness/index.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import type { BatchProgress } from '../batch/batch-progress.ts';
import { createLogger } from '../observability/logger.ts';
import type { BatchProgressStore } from './batch-progress-store.ts';
import { LocalBatchProgressStore } from './local-batch-progress-store.ts';
import { ZkBatchProgressStore } from './zk-batch-progress-store.ts';
import { ZkSession } from './zk-session.ts';

const logger = createLogger('progress-store-test', { level: 'error' });

function progress(batchVersion: number, fraction: number, finished = false): BatchProgress {
  return {
    definitionsVersion: 3,
    batchVersion,
    producedBy: 'm1',
    startedAtMs: 1_000,
    updatedAtMs: 1_000 + fraction * 1_000,
    views: { a: { state: fraction >= 1 ? 'done' : 'running', fraction }, b: { state: 'pending', fraction: 0, extended: true } },
    fraction: fraction / 2,
    ...(finished ? { finishedAtMs: 5_000, outcome: 'published' as const } : {}),
  };
}

interface Fixture {
  store: BatchProgressStore;
  /** Where another node reads (another ZooKeeper session); the same object single-node. */
  observer: BatchProgressStore;
  dispose(): Promise<void>;
}

/** One contract, every implementation: ZooKeeper in a cluster, this process's memory single-node. */
const implementations: Record<string, () => Promise<Fixture>> = {
  local: () => {
    const store = new LocalBatchProgressStore();
    return Promise.resolve({ store, observer: store, dispose: () => Promise.resolve() });
  },
  zookeeper: async () => {
    const root = `/ps-${randomBytes(4).toString('hex')}`;
    const session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger });
    const observerSession = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger });
    return {
      store: new ZkBatchProgressStore(session, root, logger),
      observer: new ZkBatchProgressStore(observerSession, root, logger),
      dispose: async () => {
        await session.close();
        await observerSession.close();
      },
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
  describe(`BatchProgressStore contract: ${name}`, () => {
    let fixture: Fixture;
    beforeAll(async () => {
      fixture = await create();
    });
    afterAll(async () => {
      await fixture?.dispose();
    });

    it('has no record before the first publication, and clearing nothing is no error', async () => {
      expect(await fixture.observer.current()).toBeUndefined();
      await fixture.store.clear();
      expect(await fixture.observer.current()).toBeUndefined();
    });

    it('overwrites the record with each publication; readers elsewhere see the last one', async () => {
      await fixture.store.publish(progress(7, 0.25));
      expect(await fixture.observer.current()).toEqual(progress(7, 0.25));
      await fixture.store.publish(progress(7, 0.5));
      await fixture.store.publish(progress(7, 1, true));
      expect(await fixture.observer.current()).toEqual(progress(7, 1, true));
    });

    it('tells a watcher the current record at once, then every change up to the last, and a clear as undefined', async () => {
      const seen: (BatchProgress | undefined)[] = [];
      const stop = fixture.observer.watch((p) => seen.push(p));
      await waitFor('current record', () => seen.length > 0);
      expect(seen[0]).toEqual(progress(7, 1, true));
      await fixture.store.publish(progress(8, 0.1));
      await fixture.store.publish(progress(8, 0.6));
      await waitFor('last record', () => seen.at(-1)?.views['a']?.fraction === 0.6);
      await fixture.store.clear();
      await waitFor('cleared', () => seen.at(-1) === undefined);
      expect(await fixture.observer.current()).toBeUndefined();
      await fixture.store.publish(progress(9, 0.3));
      await waitFor('published after a clear', () => seen.at(-1)?.batchVersion === 9);
      stop();
      await fixture.store.publish(progress(9, 0.9));
      const count = seen.length;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(seen.length).toBe(count);
      // Within one run, what a watcher hears never goes back (it may skip records).
      const fractions = seen.filter((p) => p?.batchVersion === 8).map((p) => p!.views['a']!.fraction);
      expect(fractions).toEqual([...fractions].sort((x, y) => x - y));
    });

    it('refuses a malformed record and keeps the last good one', async () => {
      const bad = { ...progress(9, 0.5), fraction: 2 };
      await expect(fixture.store.publish(bad)).rejects.toThrow();
      expect((await fixture.observer.current())?.views['a']?.fraction).toBe(0.9);
    });
  });
}
