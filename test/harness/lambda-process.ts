import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.ts';

const LAMBDA = fileURLToPath(new URL('../../cli/lambda.mjs', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** A node compiles its TypeScript through tsx on start; two loaded cores can make that slow. */
const HEALTH_TIMEOUT_MS = 60_000;
const LOG_TAIL_LINES = 40;

/** Children still running, SIGKILLed when this process exits; a watchdog covers a SIGKILLed test process. */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

export interface LambdaProcessOptions {
  readonly configFile: string;
  /** `--roles`; omitted: the default (all roles). */
  readonly roles?: readonly string[];
  /** `--node-id`; also names the log file. */
  readonly nodeId: string;
  /** `--port`; default: a free loopback port, kept across restarts. */
  readonly port?: number;
  /** Added to the environment; `LOG_LEVEL` defaults to `info` (the logs tests read are info lines). */
  readonly env?: Readonly<Record<string, string>>;
  /** Where `<nodeId>.log` is appended to; default: the config file's directory. */
  readonly logDir?: string;
  /** The log file's name in `logDir` (default `<nodeId>.log`): two processes claiming one id need two. */
  readonly logName?: string;
  /** How long `start` waits for `GET /v1/health` to answer 200 (default 60 s). */
  readonly healthTimeoutMs?: number;
}

/** How one incarnation of the process ended; `atMs` is when this test process saw it. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly atMs: number;
}

/** One pino line of a node's log, with the incarnation (pid) that wrote it. */
export interface LogLine {
  readonly msg?: string;
  readonly time: number;
  readonly level: number;
  readonly pid: number;
  readonly [field: string]: unknown;
}

/** One run of the node: started by `start` or `restart`, ended by a signal or on its own. */
export interface Incarnation {
  readonly pid: number;
  readonly startedAtMs: number;
  /** Byte offset of the log file where this incarnation's output starts. */
  readonly logStart: number;
  readonly exited: Promise<ProcessExit>;
  exit?: ProcessExit;
}

/**
 * A real `lambda start` process (`node --max-semi-space-size=64 cli/lambda.mjs start …`), as an
 * operator runs it. Its stdout and stderr go straight into `<logDir>/<nodeId>.log` (appended across
 * restarts, so a failure message can show what every incarnation said); `logLines()` parses the
 * pino JSON lines from it. A watchdog shell per child SIGKILLs it when this test process dies, even
 * by SIGKILL, so no node outlives its test.
 */
export class LambdaProcess {
  readonly nodeId: string;
  readonly port: number;
  readonly url: string;
  readonly logFile: string;
  readonly incarnations: Incarnation[] = [];

  private paused = false;

  private constructor(
    readonly options: LambdaProcessOptions,
    port: number,
  ) {
    this.nodeId = options.nodeId;
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.logFile = join(options.logDir ?? dirname(options.configFile), options.logName ?? `${options.nodeId}.log`);
  }

  /** Spawns the node and waits until `GET /v1/health` answers 200. */
  static async start(options: LambdaProcessOptions): Promise<LambdaProcess> {
    const node = await LambdaProcess.spawn(options);
    await node.waitHealthy();
    return node;
  }

  /**
   * Spawns the node without waiting for it to serve: for a process expected to fail on start,
   * or to start several nodes at once and wait for them with `waitHealthy`.
   */
  static async spawn(options: LambdaProcessOptions): Promise<LambdaProcess> {
    const node = new LambdaProcess(options, options.port ?? (await freePort()));
    node.launch();
    return node;
  }

  /** The current (latest) incarnation's pid. */
  get pid(): number {
    return this.current.pid;
  }

  /** The current incarnation's exit. */
  get exited(): Promise<ProcessExit> {
    return this.current.exited;
  }

  get alive(): boolean {
    return this.incarnations.length > 0 && this.current.exit === undefined;
  }

  private get current(): Incarnation {
    const incarnation = this.incarnations.at(-1);
    if (!incarnation) throw new Error(`${this.nodeId} was never started`);
    return incarnation;
  }

  /**
   * Sends `signal` (SIGKILL by default) and returns the exit, which the caller may await or not
   * (a second signal can follow). A paused process gets SIGCONT after a signal other than
   * SIGKILL, or the signal would wait for a resume.
   */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessExit> {
    const incarnation = this.current;
    if (incarnation.exit === undefined) {
      process.kill(incarnation.pid, signal);
      if (this.paused && signal !== 'SIGKILL' && signal !== 'SIGSTOP') this.resume();
    }
    return incarnation.exited;
  }

  /** SIGSTOP: the process stays, its sockets stay open, nothing in it runs. */
  pause(): void {
    process.kill(this.current.pid, 'SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT. */
  resume(): void {
    process.kill(this.current.pid, 'SIGCONT');
    this.paused = false;
  }

  /**
   * Stops the current incarnation if it runs (`signal`, default SIGTERM, then SIGKILL after
   * `killAfterMs`), and starts the node again with the same id, port and options.
   */
  async restart(options: { signal?: NodeJS.Signals; killAfterMs?: number } = {}): Promise<void> {
    await this.stop(options);
    this.launch();
    await this.waitHealthy();
  }

  /** Stops the current incarnation: `signal` (default SIGTERM), SIGKILL if still alive after `killAfterMs`. */
  async stop(options: { signal?: NodeJS.Signals; killAfterMs?: number } = {}): Promise<ProcessExit | undefined> {
    if (!this.alive) return this.incarnations.at(-1)?.exit;
    const exited = this.kill(options.signal ?? 'SIGTERM');
    const timer = setTimeout(() => this.alive && this.kill('SIGKILL'), options.killAfterMs ?? 30_000);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits until the current incarnation answers `GET /v1/health` with 200; fails at once if it exits. */
  async waitHealthy(timeoutMs = this.options.healthTimeoutMs ?? HEALTH_TIMEOUT_MS): Promise<void> {
    const incarnation = this.current;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (incarnation.exit) throw this.failure(`exited (${describeExit(incarnation.exit)}) before answering GET /v1/health`);
      if ((await this.health(1_000)) === 200) return;
      if (Date.now() > deadline) throw this.failure(`did not answer GET /v1/health with 200 within ${timeoutMs} ms`);
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 100)), incarnation.exited]);
    }
  }

  /** The status code of `GET /v1/health`, or undefined when nothing answers. */
  async health(timeoutMs = 2_000): Promise<number | undefined> {
    try {
      const response = await fetch(`${this.url}/v1/health`, { signal: AbortSignal.timeout(timeoutMs) });
      await response.body?.cancel();
      return response.status;
    } catch {
      return undefined;
    }
  }

  /** `GET <path>` as JSON; throws with the status and body on anything but 200. */
  async getJson<T = unknown>(path: string, timeoutMs = 10_000): Promise<T> {
    const response = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    if (!response.ok) throw new Error(`${this.nodeId} GET ${path}: ${response.status} ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }

  /**
   * The pino lines in the log file, of every incarnation (each line carries its `pid`), or of
   * the current one only. Lines that are not JSON (stdout, stack traces) are skipped.
   */
  logLines(options: { currentOnly?: boolean } = {}): LogLine[] {
    const text = this.logText(options.currentOnly ? this.current.logStart : 0);
    const lines: LogLine[] = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const parsed = JSON.parse(line) as LogLine;
        if (typeof parsed.time === 'number') lines.push(parsed);
      } catch {
        // a line cut short by a SIGKILL, or not pino's
      }
    }
    return lines;
  }

  /** The last `count` lines of the log file, raw. */
  logTail(count = LOG_TAIL_LINES): string {
    return this.logText(0).trimEnd().split('\n').slice(-count).join('\n');
  }

  /** An error naming the node, its log file and the end of its log. */
  failure(what: string): Error {
    return new Error(`${this.nodeId} (pid ${this.incarnations.at(-1)?.pid}) ${what}; log ${this.logFile}, last lines:\n${this.logTail()}`);
  }

  private logText(fromByte: number): string {
    if (!existsSync(this.logFile)) return '';
    return readFileSync(this.logFile).subarray(fromByte).toString('utf8');
  }

  private launch(): void {
    if (this.alive) throw new Error(`${this.nodeId} is already running (pid ${this.pid})`);
    const fd = openSync(this.logFile, 'a');
    const logStart = existsSync(this.logFile) ? readFileSync(this.logFile).length : 0;
    const args = ['--max-semi-space-size=64', LAMBDA, 'start', '--config', this.options.configFile, '--port', String(this.port), '--node-id', this.nodeId];
    if (this.options.roles) args.push('--roles', this.options.roles.join(','));
    writeSync(fd, `--- ${new Date().toISOString()} starting: node ${args.join(' ')}\n`);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, args, {
        cwd: REPO_ROOT,
        stdio: ['ignore', fd, fd],
        env: { ...process.env, LOG_LEVEL: 'info', ...this.options.env },
      });
    } finally {
      closeSync(fd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error(`cannot spawn ${process.execPath} for ${this.nodeId}`);
    liveChildren.add(child);
    // Kills the node when its stdin closes, i.e. when this test process dies however it dies.
    const watchdog = spawn('/bin/sh', ['-c', 'cat >/dev/null; kill -9 "$1" 2>/dev/null', 'lambda-watchdog', String(pid)], { stdio: ['pipe', 'ignore', 'ignore'] });
    watchdog.stdin!.on('error', () => undefined);
    watchdog.unref();
    this.paused = false;
    const incarnation: Incarnation = {
      pid,
      startedAtMs: Date.now(),
      logStart,
      exited: new Promise<ProcessExit>((resolve) => {
        child.once('exit', (code, signal) => {
          const exit = { code, signal, atMs: Date.now() };
          incarnation.exit = exit;
          liveChildren.delete(child);
          // SIGKILL rather than closing its stdin: the pid must not be killed after it was reused.
          watchdog.kill('SIGKILL');
          resolve(exit);
        });
      }),
    };
    this.incarnations.push(incarnation);
  }
}

export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** SIGKILLs every node still running (for afterAll), and waits for them to be gone. */
export async function killAll(nodes: readonly (LambdaProcess | undefined)[]): Promise<void> {
  await Promise.all(nodes.map(async (node) => {
    if (node?.alive) await node.kill('SIGKILL');
  }));
}
