import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../core/config/load-config.ts';
import type { LambdaProcess } from '../harness/index.ts';
import type { StatusInfo, ViewInfo } from '../../serving-layer/http/api-types.ts';
import { ClusterRig } from './fixtures/cluster-rig.ts';
import { waitForLogLine } from './fixtures/node-status.ts';

async function send(node: LambdaProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${node.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const LAMBDA = new URL('../../cli/lambda.mjs', import.meta.url).pathname;

const viewNames = async (node: LambdaProcess) => (await node.getJson<{ views: ViewInfo[] }>('/v1/views')).views.map((v) => v.name).sort();

/**
 * Two `lambda start` processes on one ZooKeeper: the definitions are cluster state. Both start
 * at once from the same file (one seeds, both run version 1); a change made on either is seen by
 * both and run by both without a restart; two changes made at once on the two nodes against one
 * version: one wins; a node restarted with a file that disagrees runs the published set.
 */
describe('definitions in a cluster', () => {
  let rig: ClusterRig;
  let nodes: LambdaProcess[];
  /** The views of the rig's config file, in its order: what seeds the definitions. */
  let fileViews: string[];
  let passed = 0;

  beforeAll(async () => {
    rig = await ClusterRig.start({ name: 'definitions' });
    fileViews = Object.keys(parseConfig(readFileSync(rig.configFile, 'utf8')).config.views);
    nodes = await rig.startNodes([{ nodeId: 'node-1' }, { nodeId: 'node-2' }]);
  }, 120_000);

  afterAll(async () => {
    await rig?.stop({ keepDir: passed < 4 });
  });

  it('two nodes started at once from one file: the definitions are seeded once, and both run version 1', async () => {
    for (const node of nodes) {
      const definitions = await node.getJson<{ version: number; views: object }>('/v1/definitions');
      expect(definitions.version).toBe(1);
      expect(Object.keys(definitions.views)).toEqual(fileViews);
      const status = await node.getJson<StatusInfo>('/v1/status');
      expect(status.definitions).toEqual({ version: 1, running: 1 });
      expect(status.members.map((m) => [m.id, m.definitionsVersion])).toEqual([['node-1', 1], ['node-2', 1]]);
    }
    const seeded = nodes.flatMap((n) => n.logLines().filter((l) => l.msg === "seeded the definitions from this node's config file"));
    expect(seeded).toHaveLength(1);
    passed++;
  }, 60_000);

  it('two changes made at once on the two nodes against version 1: one wins, the other is told so; both nodes follow the winner without a restart', async () => {
    const current = await nodes[0]!.getJson<{ views: Record<string, unknown>; alerts: Record<string, unknown> }>('/v1/definitions');
    const withView = (name: string) => ({ views: { ...current.views, [name]: { window: '1m', dimensions: ['page'], measures: { hits: 'count(*)' } } }, alerts: current.alerts, expectedVersion: 1 });
    const answers = await Promise.all([send(nodes[0]!, 'PUT', '/v1/definitions', withView('hits_a')), send(nodes[1]!, 'PUT', '/v1/definitions', withView('hits_b'))]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect(answers.find((a) => a.status === 409)!.body['error']).toMatch(/made against version 1, but they are at version 2 now/);
    const winner = answers[0]!.status === 200 ? 'hits_a' : 'hits_b';
    for (const node of nodes) {
      expect(Object.keys((await node.getJson<{ views: object }>('/v1/definitions')).views)).toEqual([...fileViews, winner]);
      const deadline = Date.now() + 30_000;
      while ((await node.getJson<StatusInfo>('/v1/status')).definitions?.running !== 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await node.getJson<StatusInfo>('/v1/status')).definitions).toEqual({ version: 2, running: 2 });
      // The winner is listed (serving, or backfilling until its history is computed); the loser nowhere.
      expect(await viewNames(node)).toEqual([...fileViews, winner].sort());
    }
    // Each process answers the blocking read (lambda apply --wait) once the winner serves there,
    // backfilled by the batch master: a query on it answers at once, on either node.
    for (const node of nodes) {
      const waited = await send(node, 'GET', '/v1/views?waitFor=2&timeout=30s');
      expect(waited.status).toBe(200);
      expect(waited.body['settled']).toBe(true);
      expect((waited.body['views'] as ViewInfo[]).map((v) => [v.name, v.state, v.backfill])).toContainEqual([winner, 'serving', undefined]);
      const answer = await send(node, 'POST', '/v1/query', { sql: `SELECT count(*) AS n FROM ${winner}` });
      expect(answer.status).toBe(200);
    }
    passed++;
  }, 60_000);

  it("a node restarted with a file that disagrees runs the published definitions, logging the difference", async () => {
    const published = await nodes[0]!.getJson<{ version: number; views: Record<string, unknown> }>('/v1/definitions');
    const winner = Object.keys(published.views).find((name) => name.startsWith('hits_'))!;
    // The file lists a view of its own (appended to its views: map, the last section).
    const ownFile = join(rig.dir, 'node-2-own.yaml');
    writeFileSync(ownFile, `${readFileSync(rig.configFile, 'utf8')}  file_only:\n    window: 1m\n    measures: {n: "count(*)"}\n`);
    const node2 = nodes[1]!;
    const restartedAtMs = Date.now();
    await node2.stop();
    // The same node id and local dir, started on its own file (its log in a file of its own).
    const restarted = await rig.startNode({ nodeId: 'node-2', configFile: ownFile, logName: 'node-2-restarted.log' });
    const differs = await waitForLogLine(restarted, "this node's config file differs from the published definitions (version 2)", restartedAtMs, 5_000);
    expect(differs.msg).toContain(`Published vs file: views added ${winner}; removed file_only`);
    expect(await viewNames(restarted)).toEqual([...fileViews, winner].sort());
    const status = await restarted.getJson<StatusInfo>('/v1/status');
    expect(status.definitions).toEqual({ version: 2, running: 2 });
    expect(status.members.map((m) => [m.id, m.definitionsVersion])).toEqual([['node-1', 2], ['node-2', 2]]);
    // Its file seeded nothing: the published set is unchanged.
    expect(await restarted.getJson('/v1/definitions')).toEqual(published);
    nodes[1] = restarted;
    passed++;
  }, 90_000);

  it('lambda apply --wait, asked of one node, returns once every serving node serves the new view', async () => {
    const current = await nodes[0]!.getJson<{ version: number; views: Record<string, unknown>; alerts: Record<string, unknown> }>('/v1/definitions');
    const file = join(rig.dir, 'wait.yaml');
    writeFileSync(file, `views: ${JSON.stringify({ ...current.views, hits_by_country: { window: 'none', dimensions: ['country'], measures: { hits: 'count(*)' } } })}\nalerts: ${JSON.stringify(current.alerts)}\n`);
    const { stdout } = await promisify(execFile)(process.execPath, [LAMBDA, 'apply', '-f', file, '--wait', '--timeout', '60s', '--url', nodes[0]!.url], {
      env: { ...process.env, LAMBDA_URL: '', LAMBDA_TOKEN: '', LAMBDA_ADMIN_TOKEN: '', LOG_LEVEL: 'warn' },
    });
    const version = current.version + 1;
    expect(stdout).toContain(`applied: definitions version ${version} (was ${current.version})`);
    expect(stdout).toMatch(new RegExp(`serving: definitions version ${version} on every serving node \\(node-1, node-2\\), every view exact \\(waited [^)]+\\)\n$`));
    // Returned: both processes answer it at once, the one not asked too, with the same rows.
    const answers = await Promise.all(nodes.map((node) => send(node, 'POST', '/v1/query', { sql: 'SELECT country, hits FROM hits_by_country ORDER BY country' })));
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers[1]!.body['rows']).toEqual(answers[0]!.body['rows']);
    passed++;
  }, 90_000);
});
