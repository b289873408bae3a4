import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LambdaError } from '../../core/errors/index.ts';

const SOURCE = fileURLToPath(new URL('./kafka-mock-broker.c', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('../.build/', import.meta.url));
const BINARY = `${BUILD_DIR}kafka-mock-broker`;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** Broker processes still running; they also exit on their own when their stdin closes. */
const liveBrokers = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveBrokers) child.kill('SIGKILL');
});

/** Kafka protocol API keys, for `pushRequestErrors`. */
export const KafkaApiKey = {
  Produce: 0,
  Fetch: 1,
  ListOffsets: 2,
  Metadata: 3,
  OffsetCommit: 8,
  OffsetFetch: 9,
  FindCoordinator: 10,
  JoinGroup: 11,
  Heartbeat: 12,
  LeaveGroup: 13,
  SyncGroup: 14,
  ApiVersions: 18,
} as const;

/** Kafka error codes, for `pushRequestErrors`; `Disconnect` makes the broker drop the connection. */
export const KafkaErrorCode = {
  Disconnect: -195, // librdkafka's RD_KAFKA_RESP_ERR__TRANSPORT
  UnknownTopicOrPartition: 3,
  LeaderNotAvailable: 5,
  NotLeaderForPartition: 6,
  RequestTimedOut: 7,
  NotCoordinator: 16,
  NotEnoughReplicas: 19,
} as const;

/** A topic name no other test uses, so test files can share nothing and run in parallel. */
export function randomTopicName(prefix = 'test'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export interface KafkaTestBrokerOptions {
  /** Number of brokers, ids 1..brokers (default 3). */
  brokers?: number;
  topics?: { name: string; partitions: number }[];
}

/**
 * A Kafka-protocol cluster for tests: librdkafka's mock cluster, run as a child process
 * (`kafka-mock-broker.c`) that takes one command per line and answers `OK` or `ERR <message>`.
 * The child exits when its stdin closes, so it never outlives the test process.
 */
export class KafkaTestBroker {
  /** Comma-separated `host:port` of every broker, as a Kafka client's bootstrap string. */
  readonly bootstrap: string;
  readonly brokers: readonly string[];
  readonly brokerCount: number;

  private readonly child: ChildProcess;
  private readonly lines: Interface;
  private readonly replies: ((line: string | null) => void)[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private exited = false;
  private readonly exitedPromise: Promise<void>;

  private constructor(child: ChildProcess, lines: Interface, bootstrap: string, brokerCount: number) {
    this.child = child;
    this.lines = lines;
    this.bootstrap = bootstrap;
    this.brokers = bootstrap.split(',');
    this.brokerCount = brokerCount;
    this.exitedPromise = new Promise((resolve) => child.once('exit', () => resolve()));
    liveBrokers.add(child);
    // A write racing the child's exit fails with EPIPE; the exit handler reports it instead.
    child.stdin!.on('error', () => undefined);
    child.once('exit', () => {
      this.exited = true;
      liveBrokers.delete(child);
      for (const reply of this.replies.splice(0)) reply(null);
    });
    lines.on('line', (line) => this.replies.shift()?.(line));
  }

  static async start(opts: KafkaTestBrokerOptions = {}): Promise<KafkaTestBroker> {
    const brokerCount = opts.brokers ?? 3;
    ensureBinary();
    const args = ['--brokers', String(brokerCount)];
    for (const t of opts.topics ?? []) args.push('--topic', `${t.name}:${t.partitions}`);

    const child = spawn(BINARY, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const lines = createInterface({ input: child.stdout! });
    try {
      const first = await firstLine(child, lines, START_TIMEOUT_MS);
      const match = /^BOOTSTRAP (\S+)$/.exec(first ?? '');
      if (!match) throw new Error(`unexpected first line ${JSON.stringify(first)}`);
      return new KafkaTestBroker(child, lines, match[1]!, brokerCount);
    } catch (cause) {
      child.kill('SIGKILL');
      throw new LambdaError(`kafka-mock-broker did not start: ${stderr.trim() || String(cause)}`, {
        cause,
        context: { args },
      });
    }
  }

  createTopic(name: string, partitions: number): Promise<void> {
    return this.command(`topic ${name} ${partitions}`);
  }

  /** Drops the broker's connections and refuses new ones; its partitions keep it as leader. */
  brokerDown(brokerId: number): Promise<void> {
    return this.command(`broker-down ${brokerId}`);
  }

  brokerUp(brokerId: number): Promise<void> {
    return this.command(`broker-up ${brokerId}`);
  }

  /** Delays every response of the broker by `rttMs`. */
  setRtt(brokerId: number, rttMs: number): Promise<void> {
    return this.command(`rtt ${brokerId} ${rttMs}`);
  }

  /** The next `count` requests of `apiKey`, to any broker, fail with `errCode`. */
  pushRequestErrors(apiKey: number, errCode: number, count = 1): Promise<void> {
    return this.command(`errors ${apiKey} ${errCode} ${count}`);
  }

  clearRequestErrors(apiKey: number): Promise<void> {
    return this.command(`clear-errors ${apiKey}`);
  }

  /** Metadata requests answer `errCode` for the topic; 0 clears it. */
  setTopicError(topic: string, errCode: number): Promise<void> {
    return this.command(`topic-error ${topic} ${errCode}`);
  }

  /** Moves a partition's leader to `brokerId` (-1: no leader). Only for topics made here. */
  setLeader(topic: string, partition: number, brokerId: number): Promise<void> {
    return this.command(`leader ${topic} ${partition} ${brokerId}`);
  }

  async stop(): Promise<void> {
    if (!this.exited) {
      this.child.stdin!.end('quit\n');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await this.exitedPromise;
      clearTimeout(timer);
    }
    this.lines.close();
  }

  /** Commands run one at a time, in call order; an `ERR` reply rejects with its message. */
  private command(line: string): Promise<void> {
    if (/[\r\n]/.test(line)) return Promise.reject(new LambdaError('command contains a newline', { context: { line } }));
    const run = async (): Promise<void> => {
      if (this.exited) throw new LambdaError('kafka-mock-broker has exited', { context: { command: line } });
      const reply = new Promise<string | null>((resolve) => this.replies.push(resolve));
      this.child.stdin!.write(`${line}\n`);
      const answer = await reply;
      if (answer === 'OK') return;
      if (answer === null) throw new LambdaError('kafka-mock-broker exited', { context: { command: line } });
      throw new LambdaError(`kafka-mock-broker: ${answer.replace(/^ERR /, '')}`, { context: { command: line } });
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

function firstLine(child: ChildProcess, lines: Interface, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no output within ${timeoutMs} ms`)), timeoutMs);
    const done = (line: string | null): void => {
      clearTimeout(timer);
      lines.off('line', done);
      child.off('exit', onExit);
      resolve(line);
    };
    const onExit = (): void => done(null);
    lines.once('line', done);
    child.once('exit', onExit);
  });
}

/**
 * Compiles the C program when the binary is missing or older than its source. Each worker
 * compiles to its own temp name and renames it into place, so parallel workers never run a
 * half-written binary.
 */
function ensureBinary(): void {
  const built = statSync(BINARY, { throwIfNoEntry: false });
  if (built && built.mtimeMs >= statSync(SOURCE).mtimeMs) return;
  mkdirSync(BUILD_DIR, { recursive: true });
  const tmp = `${BINARY}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const gcc = spawnSync('gcc', ['-O2', '-Wall', '-o', tmp, SOURCE, '-lrdkafka'], { encoding: 'utf8' });
  if (gcc.status !== 0) {
    rmSync(tmp, { force: true });
    throw new LambdaError(
      `cannot compile ${SOURCE} (needs gcc and librdkafka-dev): ${gcc.error?.message ?? gcc.stderr}`,
      { context: { source: SOURCE } },
    );
  }
  renameSync(tmp, BINARY);
}
