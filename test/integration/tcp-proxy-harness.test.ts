import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkClient, type SessionEvent } from '../../core/coordination/zk-client.ts';
import { TcpProxy, ZooKeeperTestServer } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

/**
 * The cuttable TCP proxy, with a real ZooKeeper client behind it: a blackholed link looks like a
 * network partition (the server expires the session, the client learns it only once the link is
 * back), a reset link like a dead peer.
 */
describe('TcpProxy in front of ZooKeeper', () => {
  let server: ZooKeeperTestServer;
  let observer: ZkClient;
  const clients: ZkClient[] = [];
  const proxies: TcpProxy[] = [];
  const root = `/proxy-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
    observer = await ZkClient.connect(server.connectString, { sessionTimeoutMs: 10_000 });
    await observer.mkdirp(root);
  });

  afterAll(async () => {
    await Promise.allSettled([...clients, observer].map((c) => c?.close()));
    await Promise.allSettled(proxies.map((p) => p.stop()));
    await server?.stop();
  });

  const proxied = async (): Promise<{ proxy: TcpProxy; client: ZkClient; events: SessionEvent[] }> => {
    const proxy = await TcpProxy.start({ port: server.port });
    proxies.push(proxy);
    const client = await ZkClient.connect(proxy.address, { sessionTimeoutMs: 2_000 });
    clients.push(client);
    const events: SessionEvent[] = [];
    client.onSessionEvent((e) => events.push(e));
    return { proxy, client, events };
  };

  it('forwards a session, and a blackholed link lets the session expire on the server while the client is cut off', async () => {
    const { proxy, client, events } = await proxied();
    const path = await client.create(`${root}/eph-`, Buffer.from('x'), 'ephemeral_sequential');
    expect(await observer.exists(path)).not.toBeNull();

    const cutAt = Date.now();
    proxy.cut('blackhole');
    // The server stops hearing from the client: it expires the session and deletes its ephemerals.
    await waitFor('the ephemeral node to vanish', async () => (await observer.exists(path)) === null, 15_000, 100);
    const expiredAfterMs = Date.now() - cutAt;
    expect(expiredAfterMs).toBeGreaterThanOrEqual(client.sessionTimeoutMs - 500);
    // The client saw only silence: disconnected at most, never told of the expiry.
    expect(events).not.toContain('expired');
    await waitFor('the client to notice the silence', () => events.includes('disconnected'), 10_000);

    proxy.restore();
    await waitFor('the client to learn its session expired', () => events.includes('expired'), 15_000);
    // A new session through the restored link works.
    const again = await ZkClient.connect(proxy.address, { sessionTimeoutMs: 2_000 });
    clients.push(again);
    expect(await again.exists(root)).not.toBeNull();
  }, 60_000);

  it('a reset link makes the client reconnect at once once restored, keeping its session', async () => {
    const { proxy, client, events } = await proxied();
    const path = await client.create(`${root}/eph-`, Buffer.from('x'), 'ephemeral_sequential');
    proxy.cut('reset');
    await waitFor('the client to see the reset', () => events.includes('disconnected'), 10_000);
    proxy.restore();
    await waitFor('the client to reconnect', () => events.at(-1) === 'connected', 10_000);
    expect(await observer.exists(path)).not.toBeNull();
    expect(await client.exists(path)).not.toBeNull();
  }, 60_000);
});
