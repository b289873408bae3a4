import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.ts';
import { TcpProxy, ZooKeeperTestServer } from '../../test/harness/index.ts';
import type { BatchRunOutcome } from './batch-run-requests.ts';
import { ZkBatchRunRequests } from './zk-batch-run-requests.ts';
import { ZkSession } from './zk-session.ts';

const logger = createLogger('zk-batch-run-requests-test', { level: 'silent' });

function failed(error: string): BatchRunOutcome {
  const at = new Date().toISOString();
  return { ok: false, reason: 'requested', error, startedAt: at, finishedAt: at };
}

describe('ZkBatchRunRequests', () => {
  let server: ZooKeeperTestServer;
  let proxy: TcpProxy;
  const sessions: ZkSession[] = [];
  const stops: (() => void)[] = [];

  const open = async (connectString: string) => {
    const session = await ZkSession.open({ connectString, sessionTimeoutMs: 6_000, logger });
    sessions.push(session);
    return session;
  };

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
    proxy = await TcpProxy.start({ port: server.port });
  });

  afterEach(async () => {
    proxy.restore();
    for (const stop of stops.splice(0)) stop();
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it('brings a failed run\'s outcome to the waiting client even when the connection drops as it is written', async () => {
    const root = `/lambda/requests-${randomBytes(4).toString('hex')}`;
    const master = new ZkBatchRunRequests(await open(proxy.address), root, logger);
    const requester = new ZkBatchRunRequests(await open(server.connectString), root, logger);
    let runs = 0;
    stops.push(
      master.serve(async () => {
        runs++;
        // The run fails because the master's link to ZooKeeper is in trouble; it is still down
        // when the answer is written, and back a little later.
        proxy.cut('reset');
        setTimeout(() => proxy.restore(), 1_500);
        return failed('the batch master lost ZooKeeper');
      }),
    );
    const startedAt = Date.now();
    const outcome = await requester.request({ timeoutMs: 20_000 });
    expect(outcome).toMatchObject({ ok: false, error: 'the batch master lost ZooKeeper' });
    expect(runs).toBe(1);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it('answers with a failure when the run throws, at once', async () => {
    const root = `/lambda/requests-${randomBytes(4).toString('hex')}`;
    const session = await open(server.connectString);
    const master = new ZkBatchRunRequests(session, root, logger);
    stops.push(master.serve(() => Promise.reject(new Error('cannot open DuckDB'))));
    const startedAt = Date.now();
    const outcome = await new ZkBatchRunRequests(session, root, logger).request({ timeoutMs: 20_000 });
    expect(outcome).toMatchObject({ ok: false, reason: 'requested', error: 'cannot open DuckDB' });
    expect(Date.now() - startedAt).toBeLessThan(3_000);
  });
});
