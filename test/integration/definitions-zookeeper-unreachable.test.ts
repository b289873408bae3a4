import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import { ZkDefinitionsStore } from '../../core/coordination/zk-definitions-store.ts';
import { ZkSession } from '../../core/coordination/zk-session.ts';
import { DefinitionsAdmin } from '../../core/definitions/definitions-admin.ts';
import { definitionsOfDocument } from '../../core/definitions/definitions.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { createHttpServer, type HttpServer } from '../../serving-layer/http/http-server.ts';
import type { StatusInfo } from '../../serving-layer/http/api-types.ts';
import { TcpProxy, ZooKeeperTestServer } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

const logger = createLogger('definitions-zk-test', { level: 'fatal' });
const loaded = parseConfig(`source: {timestamp: ts, schema: {ts: TIMESTAMP, page: VARCHAR}}
views:
  hits: {window: 1m, dimensions: [page], measures: {n: "count(*)"}}
`);

/**
 * The HTTP API in front of a ZooKeeper it reaches through a proxy that the test cuts: an apply
 * during the cut is answered with a clear, retriable error (503) and writes nothing.
 */
describe('applying definitions while ZooKeeper is unreachable', () => {
  let server: ZooKeeperTestServer;
  let proxy: TcpProxy;
  let viaProxy: ZkSession;
  let direct: ZkSession;
  let observer: ZkDefinitionsStore;
  let http: HttpServer;
  let url: string;

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
    proxy = await TcpProxy.start({ port: server.port });
    const root = `/defs-http-${randomBytes(4).toString('hex')}`;
    viaProxy = await ZkSession.open({ connectString: proxy.address, sessionTimeoutMs: 4_000, logger });
    direct = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 4_000, logger });
    observer = new ZkDefinitionsStore(direct, root, logger);
    await observer.publish(definitionsOfDocument(loaded.raw), 0);
    http = createHttpServer({
      port: 0,
      logger,
      metrics: new Registry(),
      status: async () => ({}) as StatusInfo,
      definitions: new DefinitionsAdmin(new ZkDefinitionsStore(viaProxy, root, logger), loaded),
    });
    url = (await http.start()).url;
  }, 60_000);

  afterAll(async () => {
    proxy?.restore();
    await http?.stop();
    await viaProxy?.close();
    await direct?.close();
    await proxy?.stop();
    await server?.stop();
  });

  const putView = () =>
    fetch(`${url}/v1/views/by_minute`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ window: '1m', measures: { n: 'count(*)' } }),
      signal: AbortSignal.timeout(30_000),
    });

  it('answers 503 with what happened, and the published set is unchanged', async () => {
    proxy.cut('blackhole');
    const response = await putView();
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: string }).error).toMatch(/^unavailable, retry: cannot read the current definitions, so nothing was changed: ZooKeeper get .*definitions failed/);
    const published = await observer.current();
    expect(published?.version).toBe(1);
    expect(Object.keys(published!.definitions.views)).toEqual(['hits']);
  }, 60_000);

  it('once ZooKeeper is reachable again, the same change goes through, once', async () => {
    proxy.restore();
    await waitFor('the change applied', async () => (await putView()).status === 200, 30_000, 500);
    const published = await observer.current();
    expect(published?.version).toBe(2);
    expect(Object.keys(published!.definitions.views)).toEqual(['hits', 'by_minute']);
  }, 60_000);
});
