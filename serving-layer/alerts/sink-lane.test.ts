import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { WebhookReceiver } from '../../test/support/webhook-receiver.ts';
import type { NewAlertRecord } from './alert-record.ts';
import { AlertStore } from './alert-store.ts';
import { SinkLane } from './sink-lane.ts';
import { WebhookSink } from './webhook-sink.ts';

const notification = (i: number): NewAlertRecord => ({
  id: `n-${i}`,
  alert: 'high_errors',
  keyJson: '{}',
  status: 'firing',
  reminder: false,
  notify: true,
  valueJson: null,
  window: null,
  sinceMs: 1_000 * i,
  atMs: 1_000 * i,
  severity: 'page',
  labels: {},
});

describe('SinkLane while its sink is down', () => {
  let instance: DuckDBInstance;
  let store: AlertStore;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    store = await AlertStore.open(instance, { file: ':memory:' });
    receiver = new WebhookReceiver(await freePort());
  });
  afterAll(async () => {
    await receiver.down();
    await store.close();
    instance.closeSync();
  });

  it('holds at most maxPendingInMemory notifications, and once the sink is back delivers every one from the store, in order and once', async () => {
    const lane = new SinkLane({
      sink: new WebhookSink({ id: 'hook', url: receiver.url, timeoutMs: 2_000 }),
      alerts: ['high_errors'],
      store,
      watermarks: store,
      backoff: { initialMs: 20, maxMs: 100 },
      takeoverSkewMs: 0,
      refusalAttempts: 3,
      maxPendingInMemory: 5,
      logger: createLogger('sink-lane-test', { level: 'silent' }),
    });
    lane.start();
    const appended: string[] = [];
    let i = 0;
    for (const batchSize of [3, 1, 7, 2, 10]) {
      const records = await store.append(Array.from({ length: batchSize }, () => notification(i++)));
      appended.push(...records.map((r) => r.id));
      lane.offer(records);
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(lane.status().pending, `after ${appended.length} notifications with the sink down`).toBe(Math.min(appended.length, 5));
    }
    expect(receiver.received).toEqual([]);
    await receiver.up();
    await waitFor('every notification delivered', () => receiver.accepted.length >= appended.length, 30_000, 20);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.accepted.map((p) => p.id)).toEqual(appended);
    expect(lane.status().pending).toBe(0);
    await lane.stop();
  });
});
