import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ZkSession } from '../../core/coordination/zk-session.ts';
import { parseConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { sinkId } from '../../serving-layer/alerts/alert-sink.ts';
import { Alerting } from '../../serving-layer/alerts/alerting.ts';
import { parsePosition } from '../../serving-layer/alerts/delivery-watermarks.ts';
import { ViewFeeder, type TestEvent } from '../support/view-feeder.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';
import { ServingDatabase } from '../../serving-layer/engine/serving-database.ts';
import { freePort, ZooKeeperTestServer } from '../harness/index.ts';
import { waitFor } from '../harness/wait-for.ts';

const SECOND = 1_000;
const T0 = Date.UTC(2026, 10, 21, 9, 0);
const logger = createLogger('alerts-notifier-test', { level: 'error' });

interface Node {
  readonly name: string;
  readonly db: ServingDatabase;
  readonly feeder: ViewFeeder;
  readonly session: ZkSession;
  alerting: Alerting;
  closed: boolean;
}

describe('one notifier in a cluster of three', () => {
  let zkServer: ZooKeeperTestServer;
  let receiver: WebhookReceiver;
  let dir: string;
  const nodes: Node[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alerts-cluster-'));
    zkServer = await ZooKeeperTestServer.start();
    receiver = new WebhookReceiver(await freePort());
    await receiver.up();
  });

  afterAll(async () => {
    for (const node of nodes) {
      if (!node.closed) await node.alerting.close().catch(() => undefined);
      await node.session.close();
      node.db.close();
    }
    await receiver?.down();
    await zkServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers each transition once while the notifier role moves by session expiry and by shutdown', async () => {
    const root = `/lambda-alerts-${randomBytes(4).toString('hex')}`;
    const loaded: LoadedConfig = parseConfig(`
source: {timestamp: ts, schema: {ts: TIMESTAMP, host: VARCHAR, errors: INTEGER}}
views:
  errors_10s: {window: 10s, dimensions: [host], measures: {errors: sum(errors)}}
alerts:
  error_burst:
    view: errors_10s
    condition: "errors > 5"
    notify: [{webhook: "${receiver.url}", timeout: 1s}]
`);
    for (const name of ['a', 'b', 'c']) {
      const db = await ServingDatabase.create(loaded);
      const session = await ZkSession.open({ connectString: zkServer.connectString, sessionTimeoutMs: 4_000, logger, reconnectDelayMs: 100 });
      const alerting = await Alerting.start({
        loaded,
        database: db,
        storageDir: join(dir, name),
        zookeeper: { session, root },
        logger,
        memberId: name,
        backoff: { initialMs: 50, maxMs: 300 },
      });
      nodes.push({ name, db, feeder: new ViewFeeder(db.adminConnection, loaded.schema, db.bound), session, alerting, closed: false });
    }
    const notifiers = () => nodes.filter((n) => !n.closed && n.alerting.isNotifier);
    await waitFor('one notifier', () => notifiers().length === 1, 5_000);
    expect(notifiers()[0]!.name).toBe('a');

    // Every node consumes the same events and evaluates at the same moments, as in lockstep.
    const hosts = ['h1', 'h2', 'h3', 'h4', 'h5'];
    let offset = 0;
    let step = 0;
    const ids: string[][] = [[], [], []];
    const run = async (steps: number) => {
      for (let s = 0; s < steps; s++, step++) {
        const bucketMs = T0 + step * 10 * SECOND;
        const events: TestEvent[] = hosts.map((host, h) => ({ ts: bucketMs + SECOND, host, errors: (step * (h + 1)) % 4 < 2 ? 9 : 0, offset: offset++ }));
        for (const [i, node] of nodes.entries()) {
          if (node.closed) continue;
          await node.feeder.toRealtime(events);
          const { records } = await node.alerting.evaluate(bucketMs + 2 * SECOND);
          ids[i]!.push(...records.filter((r) => r.notify).map((r) => r.id));
        }
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    };

    await run(10);
    await waitFor('the first notifications', () => receiver.accepted.length === ids[0]!.length, 5_000);

    // The receiver fails for a while: notifier a builds a backlog, then loses its session.
    receiver.answerWith(503);
    await run(10);
    const a = nodes[0]!;
    const expired = a.session.client;
    await zkServer.expireSession(expired.sessionId, expired.sessionPassword);
    await waitFor('a to step down and another node to take over', () => !a.alerting.isNotifier && notifiers().length === 1, 10_000);
    expect(notifiers()[0]!.name).toBe('b');
    // a's process opens a new session and stands again, behind the others.
    await waitFor("a's new session", () => a.session.client !== expired && a.session.client.state === 'connected', 10_000);
    receiver.answerWith(200);
    await run(10);
    await waitFor('the backlog and new notifications', () => receiver.accepted.length >= ids[1]!.length, 10_000);

    // b shuts down cleanly: c takes over exactly where b stopped.
    const b = nodes[1]!;
    await b.alerting.close();
    b.closed = true;
    await waitFor('c to take over', () => notifiers().length === 1, 10_000);
    expect(notifiers()[0]!.name).toBe('c');
    await run(10);
    await waitFor('everything', () => receiver.accepted.length >= ids[2]!.length, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));

    // The nodes recorded the same notifications; each reached the receiver once, in order.
    expect(ids[0]).toEqual(ids[2]!.slice(0, ids[0]!.length));
    expect(ids[1]).toEqual(ids[2]!.slice(0, ids[1]!.length));
    expect(ids[2]!.length).toBeGreaterThan(40);
    expect(receiver.accepted.map((p) => p.id)).toEqual(ids[2]);

    const position = await nodes[2]!.session.client.get(`${root}/alerts/delivered/${sinkId(loaded.config.alerts.error_burst!.notify[0]!)}`);
    expect(parsePosition(position!.data.toString())).toMatchObject({ id: ids[2]!.at(-1) });
  }, 60_000);
});
