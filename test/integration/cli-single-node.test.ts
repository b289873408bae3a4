import { spawn, type ChildProcess, execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const LAMBDA = new URL('../../cli/lambda.mjs', import.meta.url).pathname;
const DEMO_CONFIG = new URL('../../cli/demo/demo-config.yaml', import.meta.url).pathname;

/** Starts `lambda start` and resolves with its URL once it prints it. */
async function startNode(config: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [LAMBDA, 'start', '--config', config, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /running at (http:\/\/\S+)/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`lambda start exited with ${code}: ${stderr}`)));
  });
  return { child, url };
}

async function lambda(...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [LAMBDA, ...args], { env: { ...process.env, LOG_LEVEL: 'warn' } });
  return stdout;
}

async function queryJson(url: string, sql: string): Promise<unknown[][]> {
  return JSON.parse(await lambda('query', sql, '--url', url, '--format', 'json')).rows;
}

interface NodeStatus {
  batch: { version: number | null };
  rejected: { total: number };
  lag: { records: number };
  archiver: { partitions: { partition: number; archivedEndExclusive: number; highWatermark: number }[] };
}

async function status(url: string): Promise<NodeStatus> {
  return JSON.parse(await lambda('status', '--url', url, '--json')).status;
}

describe('the lambda command on a single node', () => {
  let dir: string;
  let config: string;
  let node: { child: ChildProcess; url: string } | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-cli-'));
    config = join(dir, 'lambda.yaml');
    // The demo's views, its own storage, and batches only when asked for.
    const yaml = readFileSync(DEMO_CONFIG, 'utf8')
      .replace('dir: ./data', `dir: ${JSON.stringify(join(dir, 'data'))}`)
      .replace('schedule: "0 * * * * *"', 'schedule: "0 0 1 1 *"')
      // Small offset blocks, so that the batch cut (a multiple of the block size) covers something.
      .replace('interval: 500ms', 'interval: 500ms\n  blockSize: 100');
    writeFileSync(config, yaml);
  });

  afterAll(() => {
    node?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('ingests demo events, runs a batch on request, answers queries, and keeps everything across kill -9', async () => {
    node = await startNode(config);
    const sentLine = await lambda('demo', '--url', node.url, '--count', '1500', '--rate', '3000');
    const [, sentText, refusedText] = /sent (\d+) demo events; (\d+) refused/.exec(sentLine)!;
    expect(Number(sentText)).toBe(1500);
    const refused = Number(refusedText);
    // The demo sends a few malformed events on purpose; the node refuses them at the door.
    const sent = 1500 - refused;

    // Every demo event is either counted in the views or rejected with a reason, never lost.
    const settled = async () => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const [[views]] = (await queryJson(node!.url, 'SELECT coalesce(sum(views), 0) FROM page_traffic')) as [[number]];
        const { rejected } = await status(node!.url);
        if (views + rejected.total === sent) return views;
        if (Date.now() > deadline) throw new Error(`views ${views} + rejected ${rejected.total} != sent ${sent}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const views = await settled();
    expect(views).toBeGreaterThan(1400);

    // Archived before asking for the batch, so that the batch covers something: every record the
    // log holds is in a Parquet segment (the archiver writes every batch.archiveFlushInterval, 5 s;
    // `events` counts them all before that, from the speed layer's tail).
    const archivedAll = async () => {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const [[inEvents]] = (await queryJson(node!.url, 'SELECT count(*) FROM events')) as [[number]];
        const { partitions } = (await status(node!.url)).archiver;
        if (inEvents === views && partitions.length > 0 && partitions.every((p) => p.archivedEndExclusive === p.highWatermark)) return;
        if (Date.now() > deadline) throw new Error(`not archived: ${inEvents} of ${views} events in events, archiver ${JSON.stringify(partitions)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    await archivedAll();
    const published = await lambda('batch', 'run', '--config', config, '--timeout', '30s');
    const version = Number(/batch version (\d+) published/.exec(published)![1]);
    expect(version).toBeGreaterThanOrEqual(1);
    const deadline = Date.now() + 10_000;
    while ((await status(node.url)).batch.version !== version && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await status(node.url)).batch.version).toBe(version);
    const [[batchRows]] = (await queryJson(node.url, 'SELECT count(*) FROM batch__page_traffic')) as [[number]];
    expect(batchRows).toBeGreaterThan(0);
    const before = await queryJson(node.url, 'SELECT * FROM page_traffic ORDER BY ALL');
    const table = await lambda('query', 'SELECT country, revenue FROM revenue_by_country ORDER BY country', '--url', node.url);
    expect(table).toMatch(/country/);

    // kill -9, restart: the batch version and the realtime state rebuilt from the log give the same views.
    node.child.kill('SIGKILL');
    await new Promise((r) => node!.child.once('exit', r));
    node = await startNode(config);
    const again = async () => {
      const until = Date.now() + 20_000;
      for (;;) {
        const rows = await queryJson(node!.url, 'SELECT * FROM page_traffic ORDER BY ALL');
        if (JSON.stringify(rows) === JSON.stringify(before) || Date.now() > until) return rows;
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    expect(await again()).toEqual(before);
    expect((await status(node.url)).batch.version).toBe(version);
  }, 120_000);
});
