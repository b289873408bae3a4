import ZooKeeper from 'zookeeper';
import { CoordinationError } from '../errors/index.ts';

/**
 * A thin promise adapter over the `zookeeper` npm package (the official C client), mirroring
 * ZooKeeper's own API: paths, versions, one-shot watches and session events.
 *
 * Session contract: the C client reconnects on its own *within* a session (events
 * 'disconnected' then 'connected'; ephemerals and watches survive). When the server expires the
 * session, the package closes the handle for good and this client reports 'expired' once: it never
 * opens a new session behind the caller's back, because a new session would silently lose every
 * ephemeral node (and with it leadership). After 'expired' every call fails with a non-retriable
 * CoordinationError; the caller connects a new ZkClient.
 *
 * Every call is bounded (Curator's rule): a request the server does not answer within the
 * operation timeout (default: the session timeout) rejects with a retriable OPERATIONTIMEOUT, so
 * that nothing waits forever on a frozen server or a half-open socket; its late answer is dropped.
 * As for CONNECTIONLOSS, such a write may or may not have been applied.
 */

export type CreateMode = 'persistent' | 'ephemeral' | 'persistent_sequential' | 'ephemeral_sequential';
export type SessionEvent = 'connected' | 'disconnected' | 'expired';
export type ZkClientState = 'connected' | 'disconnected' | 'expired' | 'closed';
export type WatchEventType = 'created' | 'deleted' | 'changed' | 'child';

export interface WatchedEvent {
  readonly type: WatchEventType;
  readonly path: string;
}

/**
 * Called at most once, for the first change after it was set, as in ZooKeeper. It is not called
 * when the session expires; `onSessionEvent` reports that.
 */
export type Watcher = (event: WatchedEvent) => void;

export interface ZkStat {
  readonly czxid: number;
  readonly mzxid: number;
  readonly pzxid: number;
  readonly ctime: number;
  readonly mtime: number;
  readonly version: number;
  readonly cversion: number;
  readonly aversion: number;
  /** Hex session id of the owner for an ephemeral node, "0" otherwise. */
  readonly ephemeralOwner: string;
  readonly dataLength: number;
  readonly numChildren: number;
}

export interface ZkNodeData {
  readonly data: Buffer;
  readonly version: number;
  readonly stat: ZkStat;
}

export interface ZkClientOptions {
  /** Requested session timeout; the server clamps it to [2, 20] ticks unless configured. */
  sessionTimeoutMs: number;
  /** How long `connect` waits for the first connection (default: the session timeout). */
  connectTimeoutMs?: number;
  /** How long any one call waits for its answer (default: the session timeout). */
  operationTimeoutMs?: number;
  /** Aborting gives up a `connect` in progress (retriable CONNECTIONLOSS), closing its handle. */
  signal?: AbortSignal;
  /** The C client's log level written to stdout: 0 silent (default), 1 error … 4 debug. */
  logLevel?: 0 | 1 | 2 | 3 | 4;
}

/** ZooKeeper's own error names (without the `Z` prefix), found in `error.context.code`. */
export type ZkErrorCode =
  | 'CONNECTIONLOSS'
  | 'OPERATIONTIMEOUT'
  | 'NONODE'
  | 'NODEEXISTS'
  | 'BADVERSION'
  | 'NOTEMPTY'
  | 'NOCHILDRENFOREPHEMERALS'
  | 'SESSIONEXPIRED'
  | 'SESSIONMOVED'
  | 'NOAUTH'
  | 'BADARGUMENTS'
  | 'INVALIDSTATE'
  | 'CLOSING'
  | 'UNKNOWN';

const K = ZooKeeper.constants;

/**
 * The package closes the handle as if the session had expired once the C client's
 * zookeeper_process() reports "nothing read" this many times in a row. Its default of 10 is hit
 * by partial reads of large responses and while a restarted server is not yet serving
 * (node-zookeeper #233), giving false expiries; a high limit keeps only its guard against a
 * spinning socket.
 */
const RESPONSE_COUNTER_LIMIT = 100_000;

const CREATE_FLAGS: Record<CreateMode, number> = {
  persistent: K.ZOO_PERSISTENT,
  ephemeral: K.ZOO_EPHEMERAL,
  persistent_sequential: K.ZOO_PERSISTENT_SEQUENTIAL,
  ephemeral_sequential: K.ZOO_EPHEMERAL_SEQUENTIAL,
};

const ERROR_CODES = new Map<number, ZkErrorCode>([
  [K.ZCONNECTIONLOSS, 'CONNECTIONLOSS'],
  [K.ZOPERATIONTIMEOUT, 'OPERATIONTIMEOUT'],
  [K.ZNONODE, 'NONODE'],
  [K.ZNODEEXISTS, 'NODEEXISTS'],
  [K.ZBADVERSION, 'BADVERSION'],
  [K.ZNOTEMPTY, 'NOTEMPTY'],
  [K.ZNOCHILDRENFOREPHEMERALS, 'NOCHILDRENFOREPHEMERALS'],
  [K.ZSESSIONEXPIRED, 'SESSIONEXPIRED'],
  [K.ZSESSIONMOVED, 'SESSIONMOVED'],
  [K.ZNOAUTH, 'NOAUTH'],
  [K.ZBADARGUMENTS, 'BADARGUMENTS'],
  [K.ZINVALIDSTATE, 'INVALIDSTATE'],
  [K.ZCLOSING, 'CLOSING'],
]);

/** Only a lost connection can be retried: the session, and so the caller's ephemerals, live on. */
const RETRIABLE = new Set<ZkErrorCode>(['CONNECTIONLOSS', 'OPERATIONTIMEOUT']);

const WATCH_EVENTS = new Map<number, WatchEventType>([
  [K.ZOO_CREATED_EVENT, 'created'],
  [K.ZOO_DELETED_EVENT, 'deleted'],
  [K.ZOO_CHANGED_EVENT, 'changed'],
  [K.ZOO_CHILD_EVENT, 'child'],
]);

/** True when `err` is the ZooKeeper error `code` (e.g. 'NODEEXISTS') raised by a ZkClient. */
export function isZkError(err: unknown, code: ZkErrorCode): err is CoordinationError {
  return err instanceof CoordinationError && err.context['code'] === code;
}

type Completion<T extends unknown[]> = (rc: number, error: string, ...result: T) => void;
type NativeWatcher = (type: number, state: number, path: string) => void;

/** The part of the package's callback API used here (its bundled typings are mostly `any`). */
interface NativeClient {
  init(config: Record<string, unknown>): unknown;
  close(): unknown;
  on(event: 'connect' | 'connecting', listener: () => void): unknown;
  on(event: 'close', listener: (self: unknown, code: number) => void): unknown;
  readonly timeout: number;
  readonly client_id: string;
  readonly client_password: string;
  a_create(path: string, data: Buffer, flags: number, cb: Completion<[string]>): number;
  a_exists(path: string, watch: boolean, cb: Completion<[ZkStat]>): number;
  aw_exists(path: string, watcher: NativeWatcher, cb: Completion<[ZkStat]>): number;
  a_get(path: string, watch: boolean, cb: Completion<[ZkStat, Buffer | null]>): number;
  aw_get(path: string, watcher: NativeWatcher, cb: Completion<[ZkStat, Buffer | null]>): number;
  a_get_children(path: string, watch: boolean, cb: Completion<[string[]]>): number;
  aw_get_children(path: string, watcher: NativeWatcher, cb: Completion<[string[]]>): number;
  a_set(path: string, data: Buffer, version: number, cb: Completion<[ZkStat]>): number;
  a_delete_(path: string, version: number, cb: Completion<[]>): number;
}

export class ZkClient {
  private readonly native: NativeClient;
  private readonly connectString: string;
  private readonly listeners = new Set<(event: SessionEvent) => void>();
  private currentState: ZkClientState = 'disconnected';
  /** Timers of the calls waiting for an answer: cleared on close, so none keeps the process alive. */
  private readonly pendingCalls = new Set<() => void>();

  private constructor(
    native: NativeClient,
    connectString: string,
    private readonly operationTimeoutMs: number,
  ) {
    this.native = native;
    this.connectString = connectString;
  }

  /** Opens a session; rejects (retriable) when no server answers within the connect timeout. */
  static async connect(connectString: string, opts: ZkClientOptions): Promise<ZkClient> {
    const native = new ZooKeeper({
      connect: connectString,
      timeout: opts.sessionTimeoutMs,
      debug_level: opts.logLevel ?? 0,
      host_order_deterministic: false,
      response_counter_limit: RESPONSE_COUNTER_LIMIT,
    }) as unknown as NativeClient;
    const client = new ZkClient(native, connectString, opts.operationTimeoutMs ?? opts.sessionTimeoutMs);
    const connectTimeoutMs = opts.connectTimeoutMs ?? opts.sessionTimeoutMs;
    const { signal } = opts;
    let onAbort = (): void => undefined;

    const connected = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new CoordinationError(`cannot connect to ZooKeeper at ${connectString} within ${connectTimeoutMs} ms`, {
            retriable: true,
            context: { connectString, code: 'CONNECTIONLOSS' },
          }),
        );
      }, connectTimeoutMs);
      onAbort = () => {
        clearTimeout(timer);
        reject(new CoordinationError(`connecting to ZooKeeper at ${connectString} was given up`, { retriable: true, context: { connectString, code: 'CONNECTIONLOSS' } }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      native.on('connect', () => {
        clearTimeout(timer);
        client.transition('connected');
        resolve();
      });
      native.on('connecting', () => client.transition('disconnected'));
      native.on('close', (_self, code) => {
        clearTimeout(timer);
        // Code 0 is our own close(); anything else (session expired, auth failed, or the package
        // giving up on an unresponsive socket) leaves the handle closed for good.
        client.transition(code === 0 ? 'closed' : 'expired');
        reject(new CoordinationError(`ZooKeeper session at ${connectString} ended while connecting`, {
          context: { connectString, code: 'SESSIONEXPIRED' },
        }));
      });
    });
    if (signal?.aborted) onAbort();
    else native.init({});
    try {
      await connected;
    } catch (err) {
      await client.close();
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    return client;
  }

  get state(): ZkClientState {
    return this.currentState;
  }

  /** Hex session id, as ZooKeeper logs it and as `ZkStat.ephemeralOwner` shows it. */
  get sessionId(): string {
    return this.native.client_id;
  }

  /** Hex session password; with `sessionId` it lets another handle reattach the session. */
  get sessionPassword(): string {
    return this.native.client_password;
  }

  /** The session timeout the server granted. */
  get sessionTimeoutMs(): number {
    return this.native.timeout;
  }

  /** Listens for 'connected' (again), 'disconnected' and 'expired'; returns an unsubscribe. */
  onSessionEvent(listener: (event: SessionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Creates a node; returns its path, with the sequence suffix for sequential modes. */
  async create(path: string, data: Buffer | null, mode: CreateMode = 'persistent'): Promise<string> {
    const [created] = await this.call('create', path, (cb: Completion<[string]>) =>
      this.native.a_create(path, data ?? Buffer.alloc(0), CREATE_FLAGS[mode], cb),
    );
    return created;
  }

  /** Creates `path` and its missing ancestors as empty persistent nodes; bounded as one call. */
  async mkdirp(path: string): Promise<void> {
    const deadline = Date.now() + this.operationTimeoutMs;
    let prefix = '';
    for (const segment of path.split('/').filter(Boolean)) {
      prefix += `/${segment}`;
      if (Date.now() >= deadline) throw this.error('mkdirp', path, K.ZOPERATIONTIMEOUT, `no answer within ${this.operationTimeoutMs} ms`);
      try {
        await this.create(prefix, null, 'persistent');
      } catch (err) {
        if (!isZkError(err, 'NODEEXISTS')) throw err;
      }
    }
  }

  /** The node's data and version, or null when it does not exist (and then no watch is set). */
  async get(path: string, watcher?: Watcher): Promise<ZkNodeData | null> {
    try {
      const [stat, data] = await this.call('get', path, (cb: Completion<[ZkStat, Buffer | null]>) =>
        watcher ? this.native.aw_get(path, this.oneShot(watcher), cb) : this.native.a_get(path, false, cb),
      );
      return { data: data ?? Buffer.alloc(0), version: stat.version, stat };
    } catch (err) {
      if (isZkError(err, 'NONODE')) return null;
      throw err;
    }
  }

  /** Alias of `get`, under ZooKeeper's name. */
  getData(path: string, watcher?: Watcher): Promise<ZkNodeData | null> {
    return this.get(path, watcher);
  }

  /** Child names (not paths), unsorted; fails with NONODE when the node does not exist. */
  async getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    const [children] = await this.call('getChildren', path, (cb: Completion<[string[]]>) =>
      watcher ? this.native.aw_get_children(path, this.oneShot(watcher), cb) : this.native.a_get_children(path, false, cb),
    );
    return children;
  }

  /** The node's stat, or null; a watcher is set in both cases and fires on create/delete/change. */
  async exists(path: string, watcher?: Watcher): Promise<ZkStat | null> {
    try {
      const [stat] = await this.call('exists', path, (cb: Completion<[ZkStat]>) =>
        watcher ? this.native.aw_exists(path, this.oneShot(watcher), cb) : this.native.a_exists(path, false, cb),
      );
      return stat;
    } catch (err) {
      if (isZkError(err, 'NONODE')) return null;
      throw err;
    }
  }

  /** Writes the node if its version is `version` (-1: any); returns the new stat. */
  async set(path: string, data: Buffer, version: number): Promise<ZkStat> {
    const [stat] = await this.call('set', path, (cb: Completion<[ZkStat]>) => this.native.a_set(path, data, version, cb));
    return stat;
  }

  /** Deletes the node if its version is `version` (-1: any). */
  async delete(path: string, version: number): Promise<void> {
    await this.call('delete', path, (cb: Completion<[]>) => this.native.a_delete_(path, version, cb));
  }

  /**
   * Ends the session: the server deletes its ephemeral nodes at once. Calls still waiting fail
   * with CLOSING. The C client sends the close request only when connected, and then waits at
   * most ~4.5 s (blocking) for a server that does not answer.
   */
  async close(): Promise<void> {
    for (const fail of [...this.pendingCalls]) fail();
    if (this.currentState === 'closed' || this.currentState === 'expired') return;
    this.native.close();
    this.currentState = 'closed';
  }

  private transition(next: ZkClientState): void {
    if (this.currentState === next || this.currentState === 'closed' || this.currentState === 'expired') return;
    this.currentState = next;
    if (next === 'closed') return;
    for (const listener of [...this.listeners]) listener(next);
  }

  /** The C client also passes session events to watchers; only the first node event counts. */
  private oneShot(watcher: Watcher): NativeWatcher {
    let fired = false;
    return (type, _state, path) => {
      const eventType = WATCH_EVENTS.get(type);
      if (fired || !eventType) return;
      fired = true;
      watcher({ type: eventType, path });
    };
  }

  private call<T extends unknown[]>(op: string, path: string, start: (cb: Completion<T>) => number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.currentState === 'closed' || this.currentState === 'expired') {
        reject(this.error(op, path, this.currentState === 'expired' ? K.ZSESSIONEXPIRED : K.ZCLOSING, `session ${this.currentState}`));
        return;
      }
      const settle = (fail: CoordinationError | undefined, result?: T): void => {
        clearTimeout(timer);
        this.pendingCalls.delete(onClose);
        if (fail) reject(fail);
        else resolve(result!);
      };
      const onClose = () => settle(this.error(op, path, K.ZCLOSING, 'the client was closed'));
      const timer = setTimeout(() => settle(this.error(op, path, K.ZOPERATIONTIMEOUT, `no answer within ${this.operationTimeoutMs} ms`)), this.operationTimeoutMs);
      this.pendingCalls.add(onClose);
      const rc = start((resultCode, message, ...result) => {
        settle(resultCode === K.ZOK ? undefined : this.error(op, path, resultCode, message), result);
      });
      // A negative return means the request was never queued and its callback will not run.
      if (typeof rc === 'number' && rc < 0) settle(this.error(op, path, rc, 'request not sent'));
    });
  }

  private error(op: string, path: string, rc: number, message: string): CoordinationError {
    const code = ERROR_CODES.get(rc) ?? 'UNKNOWN';
    return new CoordinationError(`ZooKeeper ${op} ${path} failed: ${message} (${code})`, {
      retriable: RETRIABLE.has(code),
      context: { op, path, code, rc, connectString: this.connectString },
    });
  }
}
