import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
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
  /** Pause between attempts to open a new session after a loss (default 500 ms). */
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
  private unsubscribe: () => void = () => undefined;
  private transactionClient: Promise<ZkTransaction> | undefined;

  private constructor(
    client: ZkClient,
    private readonly options: ZkSessionOptions,
  ) {
    this.current = client;
    this.follow(client);
  }

  /** Connects the first session; rejects (retriable) when ZooKeeper cannot be reached. */
  static async open(options: ZkSessionOptions): Promise<ZkSession> {
    const client = await ZkClient.connect(options.connectString, { sessionTimeoutMs: options.sessionTimeoutMs });
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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    const transactions = this.transactionClient;
    this.transactionClient = undefined;
    await Promise.all([this.current.close(), transactions?.then((t) => t.close(), () => undefined)]);
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

  private async renew(): Promise<void> {
    const delayMs = this.options.reconnectDelayMs ?? 500;
    while (!this.closed) {
      try {
        const client = await ZkClient.connect(this.options.connectString, { sessionTimeoutMs: this.options.sessionTimeoutMs });
        if (this.closed) {
          await client.close();
          return;
        }
        this.current = client;
        this.follow(client);
        this.options.logger.info({ sessionId: client.sessionId }, 'new ZooKeeper session');
        this.emit('new-session');
        return;
      } catch (error) {
        if (!(error instanceof CoordinationError)) throw error;
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
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
