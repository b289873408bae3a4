import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import type { Role } from '../../core/node/role.ts';
import { createLogger } from '../../core/observability/logger.ts';
import type { StatusInfo } from '../../serving-layer/http/api-types.ts';
import { expectViewsExact, makeEvents, scenarioConfigYaml, type Event } from './fixtures/exactness-scenario.ts';

// Issue 17: with speed.maxEventsTail hit, `events` lags the views, and the node says so in status,
// metrics and every query answer; the views stay exact; once the archive reaches what the speed
// layer consumed, `events` is complete again and the tail continues. The oracle: the local log
// gives the POSTed events offsets 0, 1, 2… in order.

const MAX_TAIL = 50;

async function status(url: string): Promise<StatusInfo> {
  return (await (await fetch(`${url}/v1/status`)).json()) as StatusInfo;
}

async function answer(url: string, sql: string): Promise<{ rows: unknown[][]; eventsLagging?: boolean; header: string | null }> {
  const response = await fetch(`${url}/v1/query`, { method: 'POST', body: JSON.stringify({ sql }) });
  expect(response.status).toBe(200);
  return { ...((await response.json()) as { rows: unknown[][]; eventsLagging?: boolean }), header: response.headers.get('x-lambda-events-lagging') };
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The offsets `events` holds, in order, and the view's count in the same snapshot. */
async function eventsOffsets(url: string): Promise<{ offsets: number[]; viewEvents: number; lagging: boolean | undefined; header: string | null }> {
  const reply = await answer(url, 'SELECT (SELECT list(_offset ORDER BY _offset) FROM events), (SELECT sum(events) FROM all_events)::BIGINT');
  const [[offsets, viewEvents]] = reply.rows as [[number[] | null, number]];
  return { offsets: offsets ?? [], viewEvents, lagging: reply.eventsLagging, header: reply.header };
}

describe('the events tail bound (speed.maxEventsTail)', () => {
  let dir: string;
  let node: LambdaNode | undefined;
  const logger = createLogger('test', { level: 'error' });

  afterEach(async () => {
    await node?.stop();
    node = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function start(roles: readonly Role[]): Promise<LambdaNode> {
    const yaml = scenarioConfigYaml(dir, '', { allEventsView: true })
      .replace('speed: {interval: 200ms, blockSize: 100, ', `speed: {interval: 200ms, blockSize: 100, maxEventsTail: ${MAX_TAIL}, `)
      .replace('batch: {schedule: "*/2 * * * * *"}', 'batch: {schedule: "*/2 * * * * *", archiveFlushInterval: 500ms}');
    return LambdaNode.start({ loaded: parseConfig(yaml), roles: [...roles], logger });
  }

  async function post(events: readonly Event[]): Promise<void> {
    const response = await fetch(`${node!.url}/v1/events`, { method: 'POST', body: events.map((e) => JSON.stringify(e)).join('\n') });
    expect(response.status).toBe(200);
  }

  async function waitViewsHold(count: number): Promise<void> {
    await waitUntil(`the views to hold ${count} events`, async () => (await eventsOffsets(node!.url!)).viewEvents === count);
  }

  it('lags, says so everywhere and keeps the views exact while the tail is full; complete again once the archive catches up', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-events-tail-'));
    // No archiver: nothing can catch up, so the lag lasts while it is checked.
    node = await start(['speed', 'serving']);
    const sent = makeEvents(0, 300);
    await post(sent);
    await waitViewsHold(300);
    const url = node.url!;

    const lagging = await eventsOffsets(url);
    expect(lagging.viewEvents).toBe(300);
    // A contiguous prefix, never a hole: what fitted before the tail was full.
    expect(lagging.offsets.length).toBeLessThanOrEqual(MAX_TAIL);
    expect(lagging.offsets).toEqual(Array.from({ length: lagging.offsets.length }, (_, i) => i));
    expect([lagging.lagging, lagging.header]).toEqual([true, 'true']);
    const s = await status(url);
    expect(s.events).toEqual({ tailRows: lagging.offsets.length, maxTailRows: MAX_TAIL, maxRecentRows: 150, lagging: true, lagRecords: 300 - lagging.offsets.length });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('lambda_speed_events_lagging 1');
    expect(metrics).toContain(`lambda_speed_events_lag_records ${300 - lagging.offsets.length}`);
    await expectViewsExact(url, sent);

    // With the archiver: the replay from offset 0 overflows the tail again, and the archive catches up.
    await node.stop();
    node = await start(ALL_ROLES);
    await waitViewsHold(300);
    await waitUntil('events to be complete', async () => (await eventsOffsets(node!.url!)).offsets.length === 300, 30_000);
    const complete = await eventsOffsets(node.url!);
    expect(complete.offsets).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect([complete.lagging, complete.header, complete.viewEvents]).toEqual([false, 'false', 300]);
    expect((await status(node.url!)).events?.lagging).toBe(false);

    // The tail continues: a micro-batch that fits is in events as soon as in the views.
    const more = makeEvents(300, 20);
    await post(more);
    await waitViewsHold(320);
    const after = await eventsOffsets(node.url!);
    expect(after.offsets).toEqual(Array.from({ length: 320 }, (_, i) => i));
    expect(after.lagging).toBe(false);
    expect(await (await fetch(`${node.url}/metrics`)).text()).toContain('lambda_speed_events_lagging 0');
    await expectViewsExact(node.url!, [...sent, ...more]);
  }, 120_000);
});
