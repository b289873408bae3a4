import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, LambdaProcess } from '../harness/index.ts';

/** The process harness itself, on a single-node config (no Kafka, no ZooKeeper). */
describe('LambdaProcess', () => {
  let dir: string;
  let configFile: string;
  let node: LambdaProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-process-'));
    configFile = join(dir, 'lambda.yaml');
    writeFileSync(
      configFile,
      `source:
  timestamp: ts
  schema: {ts: TIMESTAMP, page: VARCHAR}
storage: {dir: ${JSON.stringify(join(dir, 'data'))}}
batch: {schedule: "0 0 1 1 *"}
views:
  pages: {dimensions: [page], measures: {views: count(*)}}
`,
    );
  });

  afterAll(async () => {
    await killAll([node]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts `lambda start`, waits for its health check, and reads its pino log lines', async () => {
    node = await LambdaProcess.start({ configFile, nodeId: 'harness-1' });
    expect(await node.health()).toBe(200);
    const health = await node.getJson<{ nodeId: string }>('/v1/health');
    expect(health.nodeId).toBe('harness-1');
    const started = node.logLines().find((l) => l.msg === 'lambda node started');
    expect(started?.pid).toBe(node.pid);
  });

  it('pauses (SIGSTOP) and resumes (SIGCONT) the process', async () => {
    node!.pause();
    expect(await node!.health(500)).toBeUndefined();
    node!.resume();
    await node!.waitHealthy(10_000);
  });

  it('reports how the process exited, and restarts it with the same id and port', async () => {
    const { pid, url } = node!;
    const exit = await node!.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    expect(node!.alive).toBe(false);
    expect(await node!.health(500)).toBeUndefined();

    await node!.restart();
    expect(node!.pid).not.toBe(pid);
    expect(node!.url).toBe(url);
    expect(node!.incarnations).toHaveLength(2);
    const starts = node!.logLines().filter((l) => l.msg === 'lambda node started');
    expect(starts.map((l) => l.pid)).toEqual([pid, node!.pid]);
    expect(node!.logLines({ currentOnly: true }).every((l) => l.pid === node!.pid)).toBe(true);

    const stopped = await node!.stop({ signal: 'SIGTERM' });
    expect(stopped).toMatchObject({ code: 0, signal: null });
  }, 120_000);

  it('fails a wait with the end of the log when the process cannot start', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'storage: {dir: 1, nope: true}\n');
    const error = await LambdaProcess.start({ configFile: bad, nodeId: 'harness-bad' }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/harness-bad .* exited \(code [1-9]\d*\) before answering GET \/v1\/health/s);
    expect(error?.message).toMatch(/nope/);
  });
});
