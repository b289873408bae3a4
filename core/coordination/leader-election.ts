import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { retry } from '../retry/retry.ts';
import { ElectionTerms } from './election-terms.ts';
import type { LeaderElection, LeaderElectionState, Leadership, LeadershipListener } from './leadership.ts';
import type { ZkClient } from './zk-client.ts';
import type { ZkSession, ZkSessionEvent } from './zk-session.ts';

export type { LeaderElection, LeaderElectionState, Leadership, LeadershipListener } from './leadership.ts';

export interface ZkLeaderElectionOptions {
  readonly session: ZkSession;
  /** The election's parent node, e.g. `/lambda/demo/election`. */
  readonly path: string;
  readonly memberId: string;
  readonly logger: Logger;
  /** What the leader is, for the logs (default `batch master`): `became <leaderName>`. */
  readonly leaderName?: string;
  /** Extra JSON stored in the election node, for status (host, address…). */
  readonly info?: Readonly<Record<string, unknown>>;
  /**
   * A pause of the event loop longer than this ends the term (default: two thirds of the session
   * timeout): after such a pause the session may have expired without this process knowing yet.
   */
  readonly stallLimitMs?: number;
}

/** A term in ZooKeeper: its election node is the fencing token, its session the one to write with. */
export class ZkLeadership implements Leadership {
  constructor(
    readonly memberId: string,
    readonly fencingToken: string,
    readonly client: ZkClient,
    readonly signal: AbortSignal,
    private readonly fresh: () => boolean,
  ) {}

  /** The election node that must still exist for a write of this term to be valid. */
  get electionNodePath(): string {
    return this.fencingToken;
  }

  /** False once the term ended or the event loop stalled past the limit since the last check. */
  isCurrent(): boolean {
    return !this.signal.aborted && this.fresh();
  }
}

const PREFIX = 'n_';
const sequenceOf = (name: string) => Number(name.slice(-10));

/**
 * Batch-master election on ZooKeeper (DESIGN.md, "Coordination"), after Curator's LeaderLatch:
 * each candidate owns an ephemeral sequential node under `path`; the lowest leads; every other
 * candidate watches only its predecessor, so a leader's death wakes one candidate, not all.
 *
 * A term ends as soon as leadership is in doubt: connection suspended, session lost, node gone,
 * or the event loop stalled long enough for the session to have expired unseen. It starts again
 * after the check that follows a reconnection, on the same node. Node names carry a per-election
 * id, so a create whose answer was lost to a disconnection is found and adopted, not duplicated.
 */
export class ZkLeaderElection implements LeaderElection {
  readonly memberId: string;
  private readonly terms = new ElectionTerms<ZkLeadership>();
  private readonly protectionId = randomUUID().replaceAll('-', '');
  private node: { readonly path: string; readonly name: string; readonly client: ZkClient } | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Ends the backoff wait of a step being retried (session events, close). */
  private interruptRetry: () => void = () => undefined;
  private unsubscribe: () => void = () => undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private lastTickMs = performance.now();
  private readonly stallLimitMs: number;

  constructor(private readonly options: ZkLeaderElectionOptions) {
    this.memberId = options.memberId;
    this.stallLimitMs = options.stallLimitMs ?? Math.floor((options.session.client.sessionTimeoutMs * 2) / 3);
  }

  get state(): LeaderElectionState {
    return this.terms.state;
  }

  async start(): Promise<void> {
    this.terms.markStarted();
    this.unsubscribe = this.options.session.onEvent((event) => this.onSessionEvent(event));
    this.lastTickMs = performance.now();
    this.watchdog = setInterval(() => this.tick(), 100);
    this.watchdog.unref();
    await this.enqueue(() => this.join());
  }

  async close(): Promise<void> {
    if (!this.terms.markClosed()) return;
    this.interruptRetry();
    this.unsubscribe();
    clearInterval(this.watchdog);
    this.endTerm('closed');
    await this.queue;
    const node = this.node;
    this.node = undefined;
    // Ignored: the node is ephemeral, so closing (or losing) the session deletes it anyway.
    if (node) await node.client.delete(node.path, -1).catch(() => undefined);
  }

  leadership(): ZkLeadership | undefined {
    return this.terms.leadership;
  }

  addListener(listener: LeadershipListener): () => void {
    return this.terms.addListener(listener);
  }

  async leaderId(): Promise<string | undefined> {
    const client = this.options.session.client;
    const children = await this.candidates(client).catch(() => []);
    const first = children[0];
    if (!first) return undefined;
    const data = await client.get(`${this.options.path}/${first}`).catch(() => null);
    if (!data) return undefined;
    try {
      return (JSON.parse(data.data.toString('utf8')) as { memberId?: string }).memberId;
    } catch {
      return undefined;
    }
  }

  private onSessionEvent(event: ZkSessionEvent): void {
    if (this.terms.state !== 'started') return;
    this.interruptRetry();
    if (event === 'suspended') this.endTerm('connection to ZooKeeper suspended');
    else if (event === 'lost') {
      this.endTerm('ZooKeeper session expired');
      this.node = undefined;
    } else if (event === 'reconnected') void this.enqueue(() => this.check());
    else void this.enqueue(() => this.join());
  }

  /** The event loop did not run for longer than the limit: the session may be gone unseen. */
  private tick(): void {
    const now = performance.now();
    const stalledMs = now - this.lastTickMs;
    this.lastTickMs = now;
    if (stalledMs > this.stallLimitMs && this.terms.leadership) {
      this.options.logger.warn({ stalledMs }, 'event loop stalled past the leadership limit; ending the term until ZooKeeper confirms it');
      this.endTerm(`event loop stalled for ${Math.round(stalledMs)} ms`);
      void this.enqueue(() => this.check());
    }
  }

  private fresh(): boolean {
    return performance.now() - this.lastTickMs <= this.stallLimitMs;
  }

  /**
   * Serializes joins and checks. A step failing with a retriable error is retried (a join or a
   * check, whichever fits then) with backoff until the next session event or close, which end the
   * wait: the event's own step comes next. A step failing for good waits for the next event.
   */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(async () => {
      if (this.terms.state !== 'started') return;
      const interrupted = new AbortController();
      this.interruptRetry = () => interrupted.abort();
      try {
        await retry(({ attempt }) => (attempt === 1 ? task() : this.node ? this.check() : this.join()), {
          retries: Infinity,
          signal: interrupted.signal,
          minDelayMs: 500,
          maxDelayMs: 5_000,
          isRetriable: (error) => this.terms.state === 'started' && (!(error instanceof CoordinationError) || error.retriable),
          onRetry: (error, attempt) => {
            if (attempt === 1) this.options.logger.warn({ err: error, path: this.options.path }, 'leader election step failed; retrying');
          },
        });
      } catch (error) {
        if (this.terms.state === 'started') this.options.logger.warn({ err: error, path: this.options.path }, 'leader election step failed; retrying on the next ZooKeeper event');
      } finally {
        this.interruptRetry = () => undefined;
      }
    });
    this.queue = run;
    return run;
  }

  private async candidates(client: ZkClient): Promise<string[]> {
    const children = await client.getChildren(this.options.path);
    return children.filter((c) => c.startsWith(PREFIX)).sort((a, b) => sequenceOf(a) - sequenceOf(b));
  }

  private async join(): Promise<void> {
    const client = this.options.session.client;
    await client.mkdirp(this.options.path);
    const mine = (await this.candidates(client)).find((c) => c.includes(this.protectionId));
    let path: string;
    if (mine) path = `${this.options.path}/${mine}`;
    else {
      const info = Buffer.from(JSON.stringify({ memberId: this.memberId, ...this.options.info }));
      path = await client.create(`${this.options.path}/${PREFIX}${this.protectionId}_`, info, 'ephemeral_sequential');
    }
    this.node = { path, name: path.slice(this.options.path.length + 1), client };
    this.options.logger.debug({ node: path }, 'joined the batch-master election');
    await this.check();
  }

  private async check(): Promise<void> {
    const node = this.node;
    if (!node) return;
    const children = await this.candidates(node.client);
    const index = children.indexOf(node.name);
    if (index < 0) {
      this.endTerm('election node deleted');
      this.node = undefined;
      await this.join();
      return;
    }
    if (index === 0) {
      this.beginTerm(node);
      return;
    }
    this.endTerm('another member leads');
    const predecessor = `${this.options.path}/${children[index - 1]}`;
    const stat = await node.client.exists(predecessor, () => void this.enqueue(() => this.check()));
    if (!stat) await this.check();
  }

  private beginTerm(node: { path: string; client: ZkClient }): void {
    if (this.terms.leadership) return;
    this.options.logger.info({ node: node.path, memberId: this.memberId }, `became ${this.options.leaderName ?? 'batch master'}`);
    this.terms.begin((signal) => new ZkLeadership(this.memberId, node.path, node.client, signal, () => this.fresh()));
  }

  private endTerm(reason: string): void {
    const node = this.terms.leadership?.fencingToken;
    if (!node) return;
    this.options.logger.warn({ node, reason }, `no longer ${this.options.leaderName ?? 'batch master'}`);
    this.terms.end(reason, new CoordinationError(`leadership lost: ${reason}`, { context: { node } }));
  }
}
