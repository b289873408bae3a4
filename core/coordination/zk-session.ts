import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { retry } from '../retry/retry.ts';
import { ZkClient } from './zk-client.ts';
import { ZkTransaction } from './zk-transaction.ts';

/**
 * What users of a ZooKeeper connection must react to (Curator's connection states):
 * - `suspended`: the connection dropped; the session (and its ephemerals) may still be alive.
 *   A leader must stop acting as one until it knows more.
 * - `reconnected`: the same session is back; ephemerals and watches survived.
 * - `lost`: the session expired; its ephemerals are gone.
 * - `new-session`: a new session is connected after a loss; ephemerals must be re-created and
 *   watches set again, on `client`.
 */
export type ZkSessionEvent = 'suspended' | 'reconnected' | 'lost' | 'new-session';

export interface ZkSessionOptions {
  readonly connectString: string;
  readonly sessionTimeoutMs: number;
  readonly logger: Logger;
  /**
   * How long `open` keeps trying to connect the first session (default: 3 session timeouts, at
   * least 10 s): a server slow to answer one attempt (a loaded machine, a server starting) is
   * not a reason to give up.
   */
  readonly openTimeoutMs?: number;
  /** First pause between attempts to open a new session after a loss (default 500 ms; backs off to 5 s). */
  readonly reconnectDelayMs?: number;
}

/**
 * A ZooKeeper connection that outlives sessions. ZkClient never opens a new session by itself
 * (that would silently drop its ephemerals); this does, after a loss, and says so, so each user
 * re-creates what it owns: election nodes, member nodes, watches.
 */
export class ZkSession {
  private current: ZkClient;
  private readonly listeners = new Set<(event: ZkSessionEvent, client: ZkClient) => void>();
  private closed = false;
  /** Aborted by close(): ends a renewal in progress, including its connect. */
  private readonly closing = new AbortController();
  private unsubscribe: () => void = () => undefined;
  private transactionClient: Promise<ZkTransaction> | undefined;

  private constructor(
    client: ZkClient,
    private readonly options: ZkSessionOptions,
  ) {
    this.current = client;
    this.follow(client);
  }

  /** Connects the first session; rejects (retriable) when ZooKeeper cannot be reached within `openTimeoutMs`. */
  static async open(options: ZkSessionOptions): Promise<ZkSession> {
    const client = await retry(() => ZkClient.connect(options.connectString, { sessionTimeoutMs: options.sessionTimeoutMs }), {
      deadlineMs: options.openTimeoutMs ?? Math.max(10_000, 3 * options.sessionTimeoutMs),
      minDelayMs: 200,
      maxDelayMs: 2_000,
      onRetry: (error) => options.logger.warn({ err: error }, 'cannot connect to ZooKeeper yet; retrying'),
    });
    return new ZkSession(client, options);
  }

  /** The current session's client; after `lost` it fails every call until `new-session`. */
  get client(): ZkClient {
    return this.current;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * The connection for multi-op transactions (ZkTransaction), opened on first use and again after
   * it closed (expired, timed out). It has a session of its own, which owns nothing: what fences a
   * transaction is what its ops check, not which session sends it.
   */
  async transactions(): Promise<ZkTransaction> {
    if (this.closed) throw new CoordinationError('the ZooKeeper session is closed');
    const pending = this.transactionClient;
    // A connection that failed to open is not an error here: a new one is opened below.
    const open = pending ? await pending.catch(() => undefined) : undefined;
    if (open?.isOpen) return open;
    if (this.transactionClient === pending) {
      this.transactionClient = ZkTransaction.connect(this.options.connectString, { sessionTimeoutMs: this.options.sessionTimeoutMs });
    }
    const opening = this.transactionClient;
    if (!opening) throw new CoordinationError('the ZooKeeper session is closed');
    const client = await opening;
    // Closed meanwhile: close() may have run before this connection existed.
    if (this.closed) client.close();
    return client;
  }

  onEvent(listener: (event: ZkSessionEvent, client: ZkClient) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Ends the session (its ephemerals go at once) without waiting on an unreachable server: a
   * renewal in progress is given up, and a transaction connection still connecting is closed
   * when its connect ends (within the session timeout), not waited for.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    this.unsubscribe();
    const transactions = this.transactionClient;
    this.transactionClient = undefined;
    void transactions?.then((t) => t.close(), () => undefined);
    await this.current.close();
  }

  private follow(client: ZkClient): void {
    this.unsubscribe();
    this.unsubscribe = client.onSessionEvent((event) => {
      if (this.closed || client !== this.current) return;
      if (event === 'disconnected') this.emit('suspended');
      else if (event === 'connected') this.emit('reconnected');
      else {
        this.options.logger.warn({ sessionId: client.sessionId }, 'ZooKeeper session expired; opening a new one');
        this.emit('lost');
        void this.renew();
      }
    });
  }

  /** Opens a new session after a loss, until one connects or close() is called. */
  private async renew(): Promise<void> {
    const { signal } = this.closing;
    const client = await retry(
      () => ZkClient.connect(this.options.connectString, { sessionTimeoutMs: this.options.sessionTimeoutMs, signal }),
      {
        retries: Infinity,
        signal,
        minDelayMs: this.options.reconnectDelayMs ?? 500,
        maxDelayMs: 5_000,
        // A connect ended by the server (e.g. SESSIONEXPIRED while connecting) is worth another try too.
        isRetriable: (error) => error instanceof CoordinationError,
        onRetry: (error, attempt) => {
          if (attempt === 1) this.options.logger.warn({ err: error }, 'cannot open a new ZooKeeper session yet; retrying');
        },
      },
    ).catch((error: unknown) => {
      if (!this.closed) this.options.logger.error({ err: error }, 'cannot open a new ZooKeeper session');
      return undefined;
    });
    if (!client) return;
    if (this.closed) {
      await client.close();
      return;
    }
    this.current = client;
    this.follow(client);
    this.options.logger.info({ sessionId: client.sessionId }, 'new ZooKeeper session');
    this.emit('new-session');
  }

  private emit(event: ZkSessionEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event, this.current);
      } catch (error) {
        this.options.logger.error({ err: error, event }, 'ZooKeeper session listener failed');
      }
    }
  }
}
