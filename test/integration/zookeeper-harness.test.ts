import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isZkError, ZkClient, type SessionEvent, type WatchedEvent } from '../../core/coordination/zk-client.ts';
import { ZkTransaction } from '../../core/coordination/zk-transaction.ts';
import { CoordinationError } from '../../core/errors/index.ts';
import { ZooKeeperTestServer } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

async function rejection(promise: Promise<unknown>): Promise<CoordinationError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CoordinationError);
  return err as CoordinationError;
}

describe('ZkClient against a real ZooKeeper', () => {
  let server: ZooKeeperTestServer;
  let client: ZkClient;
  const extraClients: ZkClient[] = [];
  let root: string;

  const connect = async (sessionTimeoutMs = 2_000): Promise<ZkClient> => {
    const c = await ZkClient.connect(server.connectString, { sessionTimeoutMs });
    extraClients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
    client = await ZkClient.connect(server.connectString, { sessionTimeoutMs: 4_000 });
  });

  afterEach(async () => {
    await Promise.allSettled(extraClients.splice(0).map((c) => c.close()));
  });

  afterAll(async () => {
    await Promise.allSettled([client?.close()]);
    await server?.stop();
  });

  it('starts a server that answers four-letter words', async () => {
    expect(await server.fourLetterWord('ruok')).toBe('imok');
    expect(await server.fourLetterWord('srvr')).toMatch(/Mode: standalone/);
    root = `/test-${randomBytes(4).toString('hex')}`;
    await client.mkdirp(`${root}/a/b`);
    await client.mkdirp(`${root}/a/b`); // idempotent
    expect(await client.getChildren(`${root}/a`)).toEqual(['b']);
  });

  it('creates, reads, writes with a version check and deletes nodes', async () => {
    const path = `${root}/node`;
    expect(await client.create(path, Buffer.from('v0'))).toBe(path);
    expect(await client.get(path)).toMatchObject({ data: Buffer.from('v0'), version: 0 });

    const stat = await client.set(path, Buffer.from('v1'), 0);
    expect(stat.version).toBe(1);
    expect((await client.get(path))!.data.toString()).toBe('v1');

    const stale = await rejection(client.set(path, Buffer.from('lost'), 0));
    expect(stale.retriable).toBe(false);
    expect(stale.context).toMatchObject({ code: 'BADVERSION', path });
    expect(isZkError(stale, 'BADVERSION')).toBe(true);

    const exists = await rejection(client.create(path, null));
    expect(exists.context).toMatchObject({ code: 'NODEEXISTS', path });
    expect(exists.retriable).toBe(false);

    await client.create(`${root}/empty`, null);
    expect((await client.get(`${root}/empty`))!.data).toEqual(Buffer.alloc(0));

    await expect(rejection(client.delete(path, 0))).resolves.toMatchObject({ context: { code: 'BADVERSION' } });
    await client.delete(path, 1);
    expect(await client.get(path)).toBeNull();
    expect(await client.exists(path)).toBeNull();
    await expect(rejection(client.getChildren(path))).resolves.toMatchObject({ context: { code: 'NONODE' } });
  });

  it('numbers sequential nodes in creation order and ties ephemerals to the session', async () => {
    await client.mkdirp(`${root}/election`);
    const created: string[] = [];
    for (let i = 0; i < 3; i++) created.push(await client.create(`${root}/election/n_`, null, 'ephemeral_sequential'));
    expect(created.every((p) => /\/n_\d{10}$/.test(p))).toBe(true);
    expect([...created].sort()).toEqual(created);
    const children = (await client.getChildren(`${root}/election`)).sort();
    expect(children.map((c) => `${root}/election/${c}`)).toEqual(created);

    const stat = await client.exists(created[0]!);
    expect(stat!.ephemeralOwner).toBe(client.sessionId);
    const persistent = await client.create(`${root}/p_`, null, 'persistent_sequential');
    expect((await client.exists(persistent))!.ephemeralOwner).toBe('0');
  });

  it('fires each watch once, for the first change only', async () => {
    const path = `${root}/watched`;
    const seen: WatchedEvent[] = [];
    expect(await client.exists(path, (e) => seen.push(e))).toBeNull();
    await client.create(path, Buffer.from('a'));
    await waitFor('the created event', () => seen.length === 1);
    expect(seen[0]).toEqual({ type: 'created', path });

    await client.get(path, (e) => seen.push(e));
    await client.set(path, Buffer.from('b'), -1);
    await client.set(path, Buffer.from('c'), -1); // the watch is spent: no second event
    await waitFor('the changed event', () => seen.length === 2);

    await client.getChildren(path, (e) => seen.push(e));
    await client.create(`${path}/child`, null);
    await waitFor('the child event', () => seen.length === 3);

    await client.exists(`${path}/child`, (e) => seen.push(e));
    await client.delete(`${path}/child`, -1);
    await waitFor('the deleted event', () => seen.length === 4);

    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual([
      { type: 'created', path },
      { type: 'changed', path },
      { type: 'child', path },
      { type: 'deleted', path: `${path}/child` },
    ]);
  });

  describe('multi-op transactions (ZkTransaction, over node-zookeeper-client)', () => {
    let transactions: ZkTransaction;
    beforeAll(async () => {
      transactions = await ZkTransaction.connect(server.connectString, { sessionTimeoutMs: 4_000 });
    });
    afterAll(() => transactions?.close());

    /** An ephemeral "election node" of another session, and a node the transaction writes. */
    const fencedSetup = async (name: string) => {
      const owner = await connect(1_000);
      const fence = await owner.create(`${root}/${name}-election-`, Buffer.from('{}'), 'ephemeral_sequential');
      const target = `${root}/${name}-current`;
      await client.create(target, Buffer.from('v0'));
      return { owner, fence, target };
    };

    it('applies a check on another session\'s ephemeral node and a versioned set together', async () => {
      const { fence, target } = await fencedSetup('applies');
      await transactions.commit([
        { op: 'check', path: fence, version: 0 },
        { op: 'set', path: target, data: Buffer.from('v1'), version: 0 },
      ]);
      expect(await client.get(target)).toMatchObject({ data: Buffer.from('v1'), version: 1 });
      await transactions.commit([
        { op: 'check', path: fence, version: -1 },
        { op: 'create', path: `${target}-created`, data: Buffer.from('new') },
      ]);
      expect((await client.get(`${target}-created`))!.data.toString()).toBe('new');
    });

    it('writes nothing when the checked node was deleted', async () => {
      const { owner, fence, target } = await fencedSetup('deleted');
      await owner.delete(fence, -1);
      const err = await rejection(
        transactions.commit([
          { op: 'check', path: fence, version: 0 },
          { op: 'set', path: target, data: Buffer.from('lost'), version: 0 },
          { op: 'create', path: `${target}-created`, data: Buffer.from('lost') },
        ]),
      );
      expect(err.context).toMatchObject({ code: 'NONODE', failedOp: 0, path: fence, outcomeUnknown: false });
      expect(err.retriable).toBe(false);
      expect(await client.get(target)).toMatchObject({ data: Buffer.from('v0'), version: 0 });
      expect(await client.exists(`${target}-created`)).toBeNull();
    });

    it('writes nothing once the checked node\'s session expired, before its owner has heard', async () => {
      const { owner, fence, target } = await fencedSetup('expired');
      await server.expireSession(owner.sessionId, owner.sessionPassword);
      const err = await rejection(
        transactions.commit([
          { op: 'check', path: fence, version: 0 },
          { op: 'set', path: target, data: Buffer.from('lost'), version: 0 },
        ]),
      );
      expect(err.context).toMatchObject({ code: 'NONODE', failedOp: 0 });
      expect(await client.get(target)).toMatchObject({ data: Buffer.from('v0'), version: 0 });
    });

    it('writes nothing when a later op fails its version check, the check having passed', async () => {
      const { fence, target } = await fencedSetup('stale');
      await client.set(target, Buffer.from('other master'), 0);
      const err = await rejection(
        transactions.commit([
          { op: 'check', path: fence, version: 0 },
          { op: 'create', path: `${target}-created`, data: Buffer.from('lost') },
          { op: 'set', path: target, data: Buffer.from('lost'), version: 0 },
        ]),
      );
      expect(err.context).toMatchObject({ code: 'BADVERSION', failedOp: 2, path: target });
      expect((await client.get(target))!.data.toString()).toBe('other master');
      expect(await client.exists(`${target}-created`)).toBeNull();
    });

    it('fails a check whose data version does not match (0 included, which node-zookeeper-client turns into "any")', async () => {
      const { owner, fence, target } = await fencedSetup('version');
      await owner.set(fence, Buffer.from('{"changed":true}'), 0);
      const err = await rejection(
        transactions.commit([
          { op: 'check', path: fence, version: 0 },
          { op: 'set', path: target, data: Buffer.from('lost'), version: 0 },
        ]),
      );
      expect(err.context).toMatchObject({ code: 'BADVERSION', failedOp: 0 });
      expect((await client.get(target))!.data.toString()).toBe('v0');
    });
  });

  it('deletes an ephemeral node as soon as its session is closed', async () => {
    const owner = await connect();
    const path = `${root}/member`;
    await owner.create(path, Buffer.from('me'), 'ephemeral');
    const seen: WatchedEvent[] = [];
    expect(await client.exists(path, (e) => seen.push(e))).not.toBeNull();

    await owner.close();
    await waitFor('the ephemeral node to go', () => seen.length === 1, 2_000);
    expect(seen).toEqual([{ type: 'deleted', path }]);
    expect(await client.exists(path)).toBeNull();
    expect(owner.state).toBe('closed');
    await expect(rejection(owner.get(path))).resolves.toMatchObject({ retriable: false, context: { code: 'CLOSING' } });
  });

  it('reports session expiry once, drops its ephemerals and never reconnects with a new session', async () => {
    const victim = await connect(1_000);
    const events: SessionEvent[] = [];
    victim.onSessionEvent((e) => events.push(e));
    const path = `${root}/leader`;
    await victim.create(path, null, 'ephemeral');
    const deleted: WatchedEvent[] = [];
    await client.exists(path, (e) => deleted.push(e));

    await server.expireSession(victim.sessionId, victim.sessionPassword);
    await waitFor('the expired event', () => events.includes('expired'), 5_000);
    await waitFor('the ephemeral to be deleted', () => deleted.length === 1, 5_000);
    expect(await client.exists(path)).toBeNull();

    expect(victim.state).toBe('expired');
    const err = await rejection(victim.create(`${root}/after-expiry`, null));
    expect(err.retriable).toBe(false);
    expect(err.context).toMatchObject({ code: 'SESSIONEXPIRED' });

    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(events.filter((e) => e === 'expired')).toHaveLength(1);
    expect(events.at(-1)).toBe('expired');
    expect(await client.exists(`${root}/after-expiry`)).toBeNull();
  });

  it('keeps the session across a server restart, with a retriable error while disconnected', async () => {
    const survivor = await connect(4_000);
    const events: SessionEvent[] = [];
    survivor.onSessionEvent((e) => events.push(e));
    const path = `${root}/survivor`;
    await survivor.create(path, null, 'ephemeral');

    await server.kill();
    await waitFor('the disconnected event', () => events.includes('disconnected'), 5_000);
    const lost = await rejection(survivor.get(path));
    expect(lost.retriable).toBe(true);
    expect(lost.context).toMatchObject({ code: 'CONNECTIONLOSS', path });

    await server.restart();
    await waitFor('the reconnected event', () => events.at(-1) === 'connected', 10_000);
    expect(survivor.state).toBe('connected');
    expect((await survivor.exists(path))!.ephemeralOwner).toBe(survivor.sessionId);
    expect(events).not.toContain('expired');
  });
});
