import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../test/harness/free-port.ts';
import { startServingFixture, type ServingFixture } from '../test/support/serving-fixture.ts';

const run = promisify(execFile);
const LAMBDA = new URL('./lambda.mjs', import.meta.url).pathname;
const PACKAGE = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const CLEAN_ENV = { LAMBDA_URL: '', LAMBDA_TOKEN: '', LAMBDA_CONFIG: '', PORT: '' };

async function lambda(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LAMBDA, ...args], { env: { ...process.env, ...CLEAN_ENV, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('lambda flags', () => {
  it('--version prints the version of package.json', async () => {
    const { code, stdout } = await lambda(['--version']);
    expect(code).toBe(0);
    expect(stdout).toBe(`${PACKAGE.version}\n`);
  });

  it.each([
    [['demo', '--count', 'abc'], /--count .*"abc" is not a whole number/],
    [['demo', '--count', '0'], /--count .*"0" is not a whole number of at least 1/],
    [['demo', '--rate', 'fast'], /--rate .*"fast" is not a number above 0/],
    [['start', '--demo-rate', '-5'], /--demo-rate .*"-5" is not a number above 0/],
    [['batch', 'run', '--timeout', 'soon'], /--timeout .*"soon" is not a duration/],
    [['--log-format', 'xml', 'status'], /Allowed choices are json, pretty/],
  ])('%j is an error naming the bad value, not NaN or zero', async (args, message) => {
    const { code, stdout, stderr } = await lambda(args);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
  });

  it('--help shows durations as the README writes them', async () => {
    const { stdout } = await lambda(['batch', 'run', '--help']);
    expect(stdout).toMatch(/--timeout <duration> +how long to wait for the run \(default: 10m\)/);
    expect(stdout).not.toContain('600000');
  });
});

describe('lambda query: a truncated answer says so on stderr in every format', () => {
  let node: ServingFixture;
  beforeAll(async () => {
    node = await startServingFixture({ maxRows: 5 });
  });
  afterAll(async () => node?.close());

  it.each(['table', 'json', 'csv', 'ndjson'])('%s', async (format) => {
    const { code, stdout, stderr } = await lambda(['query', 'SELECT range AS n FROM range(20)', '--format', format, '--url', node.url]);
    expect(code).toBe(0);
    expect(stderr).toBe('lambda: warning: the answer was truncated at serving.maxRows (5 rows); add a LIMIT or aggregate to see everything\n');
    if (format === 'ndjson') expect(stdout.trimEnd().split('\n')).toHaveLength(5);
    if (format === 'csv') expect(stdout.trimEnd().split('\r\n')).toHaveLength(6);
    const small = await lambda(['query', 'SELECT 1 AS n', '--format', format, '--url', node.url]);
    expect(small.stderr).toBe('');
  });
});

describe('lambda start, then other commands with the same environment', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-cli-'));
  });
  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a single-node process on `port` from PORT, waits for its URL on stdout, stops it with SIGTERM; returns stderr. */
  async function startAndStop(port: number, extraArgs: string[], whileRunning: (configFile: string) => Promise<void>): Promise<string> {
    const demo = readFileSync(new URL('./demo/demo-config.yaml', import.meta.url), 'utf8');
    const configFile = join(dir, `lambda-${port}.yaml`);
    writeFileSync(configFile, demo.replace('dir: ./data', `dir: ${join(dir, `data-${port}`)}`));
    child = spawn(process.execPath, [LAMBDA, 'start', '--config', configFile, ...extraArgs], { env: { ...process.env, ...CLEAN_ENV, PORT: String(port), LOG_LEVEL: 'info' } });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (!stdout.includes('running at')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no start: ${stdout}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stdout).toContain(`running at http://127.0.0.1:${port}`);
    await whileRunning(configFile);
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    child = undefined;
    return stderr;
  }

  it('logs JSON lines when stderr is a pipe, and pretty lines with --log-format pretty', async () => {
    const jsonLog = await startAndStop(await freePort(), [], async () => undefined);
    const lines = jsonLog.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ level: expect.any(Number), msg: expect.any(String) });
    expect(lines.map((l) => JSON.parse(l).msg)).toContain('serving HTTP');

    const prettyLog = await startAndStop(await freePort(), ['--log-format', 'pretty'], async () => undefined);
    expect(prettyLog).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(lambda\): serving HTTP$/m);
    expect(prettyLog).not.toMatch(/^\{/m);
  });

  it('query and status find the node from PORT, or from serving.port of --config, without --url', async () => {
    const port = await freePort();
    await startAndStop(port, [], async (configFile) => {
      const fromPort = await lambda(['query', 'SELECT 41 + 1 AS answer', '--format', 'csv'], { PORT: String(port) });
      expect(fromPort.stderr).toBe('');
      expect(fromPort.stdout).toBe('answer\r\n42\r\n');
      writeFileSync(`${configFile}.client.yaml`, readFileSync(configFile, 'utf8').replace('port: 8080', `port: ${port}`));
      const fromConfig = await lambda(['status', '--json', '--config', `${configFile}.client.yaml`]);
      expect(fromConfig.stderr).toBe('');
      expect(JSON.parse(fromConfig.stdout).status.roles).toEqual(expect.arrayContaining(['serving']));
    });
  });
});
