import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.ts';
import { TcpProxy, waitFor, ZooKeeperTestServer } from '../../test/harness/index.ts';
import { ZkSession, type ZkSessionEvent } from './zk-session.ts';

describe('ZkSession renewal', () => {
  let server: ZooKeeperTestServer;
  let proxy: TcpProxy;
  const sessions: ZkSession[] = [];
  const logger = createLogger('zk-session-test', { level: 'silent' });

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
    proxy = await TcpProxy.start({ port: server.port });
  });

  afterEach(async () => {
    proxy.restore();
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  /** A session through the proxy whose next renewal finds the link cut (reset). */
  async function sessionLostBehindACut(): Promise<{ session: ZkSession; events: ZkSessionEvent[] }> {
    const session = await ZkSession.open({ connectString: proxy.address, sessionTimeoutMs: 2_000, logger, reconnectDelayMs: 50 });
    sessions.push(session);
    const events: ZkSessionEvent[] = [];
    session.onEvent((event) => {
      events.push(event);
      if (event === 'lost') proxy.cut('reset'); // before the renewal's first connect
    });
    await server.expireSession(session.client.sessionId, session.client.sessionPassword);
    await waitFor('the session lost', () => events.includes('lost'), 10_000);
    return { session, events };
  }

  /** The renewal has tried to connect through the cut at least once and was refused. */
  async function renewalRefused(): Promise<void> {
    const before = proxy.refusedCount;
    await waitFor('a renewal attempt refused at the cut', () => proxy.refusedCount > before, 10_000);
  }

  it('opens the first session once a server slow to answer does, within the open timeout', async () => {
    server.pause();
    setTimeout(() => server.resume(), 2_500);
    const session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 1_000, logger, openTimeoutMs: 10_000 });
    sessions.push(session);
    expect(session.client.state).toBe('connected');
  });

  it('opens a new session once ZooKeeper can be reached again', async () => {
    const { session, events } = await sessionLostBehindACut();
    const lostClient = session.client;
    await renewalRefused();
    expect(events).not.toContain('new-session');
    proxy.restore();
    await waitFor('a new session', () => events.includes('new-session'), 15_000);
    expect(session.client).not.toBe(lostClient);
    expect(session.client.state).toBe('connected');
  });

  it('gives up a renewal in progress when closed, at once, and never opens a session afterwards', async () => {
    const { session, events } = await sessionLostBehindACut(); // the renewal starts as 'lost' is heard
    const startedAt = Date.now();
    await session.close();
    expect(Date.now() - startedAt).toBeLessThan(500);
    proxy.restore();
    // Nothing to wait for but time: a renewal not given up would retry within its backoff (< 1 s).
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(events).not.toContain('new-session');
    expect(session.client.state).not.toBe('connected');
  });
});
