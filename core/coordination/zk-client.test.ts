import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinationError } from '../errors/index.ts';
import { ZooKeeperTestServer } from '../../test/harness/index.ts';
import { isZkError, ZkClient } from './zk-client.ts';

describe('ZkClient bounds every call', () => {
  let server: ZooKeeperTestServer;

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
  });

  afterAll(async () => {
    server.resume();
    await server?.stop();
  });

  it('fails a call the server does not answer with a retriable OPERATIONTIMEOUT, within the operation timeout', async () => {
    const client = await ZkClient.connect(server.connectString, { sessionTimeoutMs: 10_000, operationTimeoutMs: 300 });
    try {
      await client.mkdirp('/bounded/a');
      server.pause();
      const calls = {
        get: client.get('/bounded/a'),
        exists: client.exists('/bounded/a'),
        getChildren: client.getChildren('/bounded'),
        create: client.create('/bounded/b', null),
        set: client.set('/bounded/a', Buffer.from('x'), -1),
        delete: client.delete('/bounded/a', -1),
        mkdirp: client.mkdirp('/bounded/c/d'),
      };
      const startedAt = Date.now();
      for (const [op, call] of Object.entries(calls)) {
        const error = await call.then(() => undefined, (e: unknown) => e);
        expect(isZkError(error, 'OPERATIONTIMEOUT'), `${op}: ${String(error)}`).toBe(true);
        expect((error as CoordinationError).retriable).toBe(true);
      }
      expect(Date.now() - startedAt).toBeLessThan(2_000);
    } finally {
      server.resume();
      await client.close();
    }
  });

  it('fails the calls still waiting when it is closed, with CLOSING', async () => {
    const client = await ZkClient.connect(server.connectString, { sessionTimeoutMs: 10_000, operationTimeoutMs: 60_000 });
    server.pause();
    const waiting = client.get('/bounded');
    // Closing a client connected to a frozen server would block in the C client; the pending
    // call must fail before that, and the session's close goes out once the server answers.
    const failed = waiting.then(() => undefined, (e: unknown) => e);
    setTimeout(() => server.resume(), 200);
    await client.close();
    expect(isZkError(await failed, 'CLOSING')).toBe(true);
  });

  it('gives up a connect when its signal aborts', async () => {
    server.pause();
    try {
      const controller = new AbortController();
      const startedAt = Date.now();
      const connecting = ZkClient.connect(server.connectString, { sessionTimeoutMs: 10_000, signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      const error = await connecting.then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(CoordinationError);
      expect((error as CoordinationError).retriable).toBe(true);
      // The C client's close of a handle mid-handshake with a frozen server blocks up to 1.5 s.
      expect(Date.now() - startedAt).toBeLessThan(2_500);
      await expect(ZkClient.connect(server.connectString, { sessionTimeoutMs: 10_000, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CoordinationError);
    } finally {
      server.resume();
    }
  });
});
