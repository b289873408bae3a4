import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import ZooKeeper from 'zookeeper';
import { LambdaError } from '../../core/errors/index.ts';
import { freePort } from './free-port.ts';

const JAVA = '/usr/bin/java';
// Debian's zookeeper.jar names its dependencies in its manifest Class-Path; slf4j-simple is
// the logging binding (without one slf4j falls back to no-op and warns on stderr).
const CLASSPATH = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-simple.jar'];
const JVM_FLAGS = [
  '-Xms32m',
  '-Xmx256m',
  '-XX:+UseSerialGC',
  '-XX:TieredStopAtLevel=1',
  '-XX:-UsePerfData',
  '-Djava.awt.headless=true',
  '-Dzookeeper.jmx.log4j.disable=true',
  '-Dorg.slf4j.simpleLogger.defaultLogLevel=warn',
];
const READY_TIMEOUT_MS = 30_000;

/** JVMs still running, killed when the test process exits in any orderly way. */
const liveJvms = new Set<number>();
process.on('exit', () => {
  for (const pid of liveJvms) killQuietly(pid, 'SIGKILL');
});
const START_ATTEMPTS = 3;

/**
 * Runs the JVM under a small shell that prints the JVM's pid, then kills the JVM as soon as
 * its own stdin closes: when the test process dies, even by SIGKILL, no JVM is left behind.
 * The shell exits when the JVM does, with its status.
 */
const SUPERVISOR = [
  'exec 3<&0',
  '"$@" </dev/null >>"$ZK_LOG" 2>&1 & jvm=$!',
  'echo "$jvm"',
  '(cat <&3 >/dev/null; kill -9 "$jvm" 2>/dev/null) &',
  'exec 3<&-',
  'wait "$jvm"',
].join('\n');

export interface ZooKeeperTestServerOptions {
  /** ZooKeeper's tick (default 200 ms); sessions may time out from 2 ticks to 60 s. */
  tickTimeMs?: number;
}

interface Running {
  readonly supervisor: ChildProcess;
  readonly jvmPid: number;
  readonly exited: Promise<void>;
}

/**
 * A standalone ZooKeeper server on a free loopback port with its own temp data dir.
 * `kill()` + `restart()` keep the data dir and port, so sessions and znodes survive as they
 * would across a real server restart; `stop()` removes everything.
 */
export class ZooKeeperTestServer {
  readonly port: number;
  readonly connectString: string;
  /** Temp dir holding `data/`, `zoo.cfg` and `zookeeper.log` (the JVM's output). */
  readonly dir: string;
  readonly logFile: string;

  private running: Running | undefined;
  private stopped = false;

  private constructor(dir: string, port: number) {
    this.dir = dir;
    this.port = port;
    this.connectString = `127.0.0.1:${port}`;
    this.logFile = join(dir, 'zookeeper.log');
  }

  static async start(opts: ZooKeeperTestServerOptions = {}): Promise<ZooKeeperTestServer> {
    for (const jar of CLASSPATH) {
      if (!existsSync(jar)) throw new LambdaError(`${jar} is missing: install Debian's zookeeper and libslf4j-java`);
    }
    const tickTimeMs = opts.tickTimeMs ?? 200;
    let lastError: unknown;
    // The port is free when chosen but can be taken before the JVM binds it: retry elsewhere.
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), 'zk-test-'));
      const server = new ZooKeeperTestServer(dir, await freePort());
      writeFileSync(join(dir, 'zoo.cfg'), zooCfg(dir, server.port, tickTimeMs));
      try {
        await server.launch();
        return server;
      } catch (err) {
        lastError = err;
        await server.stop();
      }
    }
    throw lastError;
  }

  /** The JVM's pid while it runs. */
  get pid(): number | undefined {
    return this.running?.jvmPid;
  }

  /** Kills the JVM at once (SIGKILL), keeping its data for `restart()`. */
  async kill(): Promise<void> {
    const running = this.running;
    if (!running) return;
    this.running = undefined;
    killQuietly(running.jvmPid, 'SIGKILL');
    running.supervisor.stdin!.end();
    await running.exited;
  }

  /** Starts the server again on the same port and data dir (killing it first if it runs). */
  async restart(): Promise<void> {
    if (this.stopped) throw new LambdaError('the ZooKeeper test server was stopped', { context: { port: this.port } });
    await this.kill();
    await this.launch();
  }

  /**
   * Freezes the JVM (SIGSTOP): clients see a server that accepts connections but never answers.
   * Pausing past a session timeout does not reliably expire the session: on resume, the client's
   * reconnect can revive it before the expirer runs. Use `expireSession` for that.
   */
  pause(): void {
    if (this.running) process.kill(this.running.jvmPid, 'SIGSTOP');
  }

  resume(): void {
    if (this.running) process.kill(this.running.jvmPid, 'SIGCONT');
  }

  /** Kills the server and removes its temp dir. Safe to call more than once. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * Expires a client's session for certain, the way Curator's KillSession does: attach a second
   * handle to the same session and close it, until a handle attaching to it is told the session
   * has expired. (Pausing the server past the timeout is racy: on resume, the client's reconnect
   * can revive the session before the expirer runs.) The original client learns of the expiry
   * when it next reconnects, usually within milliseconds.
   */
  async expireSession(sessionId: string, sessionPassword: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const outcome = await attachAndClose(this.connectString, sessionId, sessionPassword);
      if (outcome === 'expired') return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new LambdaError(`session ${sessionId} did not expire within ${timeoutMs} ms`, { context: { port: this.port } });
  }

  /** Sends a four-letter word (`ruok`, `srvr`, `stat`) and returns the answer. */
  fourLetterWord(word: 'ruok' | 'srvr' | 'stat', timeoutMs = 2_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: this.port });
      let answer = '';
      socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer to ${word} within ${timeoutMs} ms`)));
      socket.setEncoding('utf8');
      socket.on('connect', () => socket.write(word));
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('error', reject);
      socket.on('close', () => resolve(answer));
    });
  }

  private async launch(): Promise<void> {
    const args = [JAVA, ...JVM_FLAGS, '-cp', CLASSPATH.join(':'), 'org.apache.zookeeper.server.ZooKeeperServerMain', join(this.dir, 'zoo.cfg')];
    const supervisor = spawn('/bin/sh', ['-c', SUPERVISOR, 'zk-supervisor', ...args], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...process.env, ZK_LOG: this.logFile },
    });
    supervisor.stdin!.on('error', () => undefined); // EPIPE if the shell is already gone
    const exited = new Promise<void>((resolve) => supervisor.once('exit', () => resolve()));
    const jvmPid = await firstLineAsPid(supervisor);
    if (jvmPid === undefined) {
      throw new LambdaError('cannot launch the ZooKeeper JVM', { context: { logFile: this.logFile } });
    }
    const running: Running = { supervisor, jvmPid, exited };
    this.running = running;
    liveJvms.add(jvmPid);
    void exited.then(() => {
      liveJvms.delete(jvmPid);
      supervisor.stdin!.end(); // lets the watchdog subshell go
      if (this.running === running) this.running = undefined;
    });
    await this.waitUntilServing(running);
  }

  /** `ruok` answers before the server serves; `srvr` says "not currently serving" until it does. */
  private async waitUntilServing(running: Running): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.running !== running) {
        throw new LambdaError(`ZooKeeper exited during start; see ${this.logFile}`, { context: { port: this.port } });
      }
      const answer = await this.fourLetterWord('srvr', 1_000).catch(() => '');
      if (answer.includes('Mode:')) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new LambdaError(`ZooKeeper did not serve within ${READY_TIMEOUT_MS} ms; see ${this.logFile}`, {
      context: { port: this.port },
    });
  }
}

function zooCfg(dir: string, port: number, tickTimeMs: number): string {
  return [
    `tickTime=${tickTimeMs}`,
    `dataDir=${join(dir, 'data')}`,
    `clientPort=${port}`,
    'clientPortAddress=127.0.0.1',
    `minSessionTimeout=${2 * tickTimeMs}`,
    'maxSessionTimeout=60000',
    'admin.enableServer=false',
    '4lw.commands.whitelist=ruok,srvr,stat',
    // Tests favour speed over durability: no fsync, small log preallocation (KiB).
    'forceSync=no',
    'preAllocSize=1024',
    '',
  ].join('\n');
}

interface RawZooKeeper {
  init(config: Record<string, unknown>): unknown;
  close(): unknown;
  once(event: 'connect', listener: () => void): unknown;
  once(event: 'close', listener: (self: unknown, code: number) => void): unknown;
}

/** Attaches to the session: 'expired' if the server refuses it, else closes it and says 'closed'. */
function attachAndClose(connectString: string, clientId: string, clientPassword: string): Promise<'expired' | 'closed'> {
  return new Promise((resolve) => {
    const zk = new ZooKeeper({
      connect: connectString,
      timeout: 2_000,
      debug_level: 0,
      response_counter_limit: 100_000, // the default 10 can fake an expiry (see zk-client.ts)
      client_id: clientId,
      client_password: clientPassword,
    }) as unknown as RawZooKeeper;
    const timer = setTimeout(() => {
      zk.close();
      resolve('closed');
    }, 2_000);
    zk.once('connect', () => {
      clearTimeout(timer);
      zk.close(); // sends closeSession for the shared session
      resolve('closed');
    });
    zk.once('close', (_self, code) => {
      clearTimeout(timer);
      if (code !== 0) resolve('expired');
    });
    zk.init({});
  });
}

function firstLineAsPid(child: ChildProcess): Promise<number | undefined> {
  return new Promise((resolve) => {
    const lines = createInterface({ input: child.stdout! });
    const done = (pid: number | undefined): void => {
      lines.close();
      resolve(pid);
    };
    lines.once('line', (line) => done(/^\d+$/.test(line) ? Number(line) : undefined));
    child.once('exit', () => done(undefined));
  });
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
