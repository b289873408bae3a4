import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZooKeeperTestServer } from '../../test/harness/index.ts';
import type { BatchManifest } from '../batch/batch-manifest.ts';
import { CoordinationError } from '../errors/index.ts';
import { createLogger } from '../observability/logger.ts';
import { StorageLayout } from '../storage/storage-layout.ts';
import type { BatchManifestStore } from './batch-manifest-store.ts';
import { ZkLeaderElection } from './leader-election.ts';
import type { LeaderElection, Leadership } from './leadership.ts';
import { LocalBatchManifestStore } from './local-batch-manifest-store.ts';
import { StandaloneLeaderElection } from './standalone-leader-election.ts';
import { ZkBatchManifestStore } from './zk-batch-manifest-store.ts';
import { ZkSession } from './zk-session.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

const logger = createLogger('manifest-store-test', { level: 'error' });

function manifest(version: number): BatchManifest {
  const now = '2026-01-01T00:00:00.000Z';
  return {
    version,
    topic: 'clicks',
    cuts: { '0': version * 10_000 },
    blockSize: 10_000,
    location: `batch/v${String(version).padStart(8, '0')}`,
    views: { v: { definitionHash: 'h', file: 'batch/v/v.parquet', rows: version } },
    eventsRead: version,
    startedAt: now,
    finishedAt: now,
    durationMs: 1,
    producedBy: 'test',
  };
}

interface Fixture {
  store: BatchManifestStore;
  /** A store on another connection, as a serving node would have. */
  observer: BatchManifestStore;
  election: LeaderElection;
  dispose(): Promise<void>;
}

/** One contract, every implementation (DESIGN: ZooKeeper in a cluster, a file single-node). */
const implementations: Record<string, () => Promise<Fixture>> = {
  local: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'manifest-store-'));
    const election = new StandaloneLeaderElection('solo');
    await election.start();
    return {
      store: new LocalBatchManifestStore(new StorageLayout(dir), 20),
      observer: new LocalBatchManifestStore(new StorageLayout(dir), 20),
      election,
      dispose: async () => {
        await election.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  zookeeper: async () => {
    const root = `/ms-${randomBytes(4).toString('hex')}`;
    const session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger });
    const observerSession = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger });
    const election = new ZkLeaderElection({ session, path: `${root}/election`, memberId: 'm1', logger });
    await election.start();
    await waitFor('leadership', () => election.leadership() !== undefined);
    return {
      store: new ZkBatchManifestStore(session, root, logger),
      observer: new ZkBatchManifestStore(observerSession, root, logger),
      election,
      dispose: async () => {
        await election.close();
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
  describe(`BatchManifestStore contract: ${name}`, () => {
    let fixture: Fixture;
    let leadership: Leadership;
    beforeAll(async () => {
      fixture = await create();
      leadership = fixture.election.leadership()!;
    });
    afterAll(async () => {
      await fixture?.dispose();
    });

    it('has no current version before the first publication', async () => {
      expect(await fixture.store.current()).toBeUndefined();
    });

    it('publishes increasing versions, which watchers see in order and once each', async () => {
      const seen: number[] = [];
      const stop = fixture.observer.watch((m) => seen.push(m.version));
      await fixture.store.publish(manifest(1), leadership);
      await waitFor('v1 seen', () => seen.includes(1));
      await fixture.store.publish(manifest(2), leadership);
      await fixture.store.publish(manifest(3), leadership);
      await waitFor('v3 seen', () => seen.includes(3));
      stop();
      expect(seen).toEqual([...new Set(seen)].sort((a, b) => a - b));
      expect(await fixture.observer.current()).toEqual(manifest(3));
    });

    it('tells a new watcher the current version at once', async () => {
      const seen: number[] = [];
      const stop = fixture.observer.watch((m) => seen.push(m.version));
      await waitFor('current seen', () => seen.length > 0);
      stop();
      expect(seen).toEqual([3]);
    });

    it('refuses a version that is not above the current one, changing nothing', async () => {
      await expect(fixture.store.publish(manifest(3), leadership)).rejects.toBeInstanceOf(CoordinationError);
      await expect(fixture.store.publish(manifest(2), leadership)).rejects.toThrow(/already published/);
      expect((await fixture.store.current())?.version).toBe(3);
    });

    it('refuses to publish once the term has ended', async () => {
      await fixture.election.close();
      expect(leadership.signal.aborted).toBe(true);
      await expect(fixture.store.publish(manifest(4), leadership)).rejects.toBeInstanceOf(CoordinationError);
      expect((await fixture.store.current())?.version).toBe(3);
    });
  });
}

describe('ZkBatchManifestStore fencing', () => {
  it('a master whose session expired publishes nothing, even before it has heard of the expiry', async () => {
    const root = `/fence-${randomBytes(4).toString('hex')}`;
    const session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger, reconnectDelayMs: 60_000 });
    const election = new ZkLeaderElection({ session, path: `${root}/election`, memberId: 'old', logger, stallLimitMs: 60_000 });
    const store = new ZkBatchManifestStore(session, root, logger);
    try {
      await election.start();
      await waitFor('leadership', () => election.leadership() !== undefined);
      const stale = election.leadership()!;
      await store.publish(manifest(1), stale);
      // Expire the session behind the client's back and publish straight away, as a paused master
      // would on SIGCONT: the term's signal may not have fired yet, ZooKeeper refuses anyway.
      await server.expireSession(session.client.sessionId, session.client.sessionPassword);
      await expect(store.publish(manifest(2), stale)).rejects.toBeInstanceOf(CoordinationError);
      const observer = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger });
      expect((await new ZkBatchManifestStore(observer, root, logger).current())?.version).toBe(1);
      await observer.close();
    } finally {
      await election.close();
      await session.close();
    }
  });

  it('a master whose election node was deleted publishes nothing', async () => {
    const root = `/fence-${randomBytes(4).toString('hex')}`;
    const session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger });
    const election = new ZkLeaderElection({ session, path: `${root}/election`, memberId: 'm', logger });
    const store = new ZkBatchManifestStore(session, root, logger);
    try {
      await election.start();
      await waitFor('leadership', () => election.leadership() !== undefined);
      const term = election.leadership()!;
      await session.client.delete(term.fencingToken, -1);
      await expect(store.publish(manifest(1), term)).rejects.toThrow(/election node is gone|no longer the batch master/);
      expect(await store.current()).toBeUndefined();
    } finally {
      await election.close();
      await session.close();
    }
  });
});
