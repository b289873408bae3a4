import zookeeper from 'node-zookeeper-client';
import { CoordinationError } from '../errors/index.ts';
import type { ZkErrorCode } from './zk-client.ts';

/** One operation of a ZooKeeper multi-op; versions are data versions (-1: any). */
export type ZkOp =
  | { readonly op: 'check'; readonly path: string; readonly version: number }
  | { readonly op: 'set'; readonly path: string; readonly data: Buffer; readonly version: number }
  | { readonly op: 'create'; readonly path: string; readonly data: Buffer };

export interface ZkTransactionOptions {
  readonly sessionTimeoutMs: number;
  /** How long connecting and each commit may take (default: the session timeout). */
  readonly timeoutMs?: number;
}

/** node-zookeeper-client's Exception codes, by the names ZkClient uses (ZkErrorCode). */
const ERROR_CODES = new Map<number, ZkErrorCode>([
  [zookeeper.Exception.CONNECTION_LOSS, 'CONNECTIONLOSS'],
  [zookeeper.Exception.OPERATION_TIMEOUT, 'OPERATIONTIMEOUT'],
  [zookeeper.Exception.NO_NODE, 'NONODE'],
  [zookeeper.Exception.NODE_EXISTS, 'NODEEXISTS'],
  [zookeeper.Exception.BAD_VERSION, 'BADVERSION'],
  [zookeeper.Exception.NOT_EMPTY, 'NOTEMPTY'],
  [zookeeper.Exception.SESSION_EXPIRED, 'SESSIONEXPIRED'],
  [zookeeper.Exception.NO_AUTH, 'NOAUTH'],
  [zookeeper.Exception.BAD_ARGUMENTS, 'BADARGUMENTS'],
]);

/** After these the outcome of a commit is unknown: it may have been applied. */
const AMBIGUOUS = new Set<ZkErrorCode>(['CONNECTIONLOSS', 'OPERATIONTIMEOUT']);

/**
 * ZooKeeper multi-ops (all operations applied atomically, or none), over the pure-JS
 * `node-zookeeper-client`, because the `zookeeper` package behind ZkClient has no `zoo_amulti`
 * (node-zookeeper issue #320). Its own session serves only transactions: a `check` op on another
 * session's ephemeral node holds exactly while that session lives, whichever session sends it.
 *
 * A commit rejects with a CoordinationError whose `context.code` is ZkClient's name of the error
 * and `context.failedOp` the index of the operation that failed; `context.outcomeUnknown` is true
 * when the connection dropped or the commit timed out, after which the transaction may or may not
 * have been applied (read back to know). A timed-out client is closed, so nothing it queued is
 * sent later.
 */
export class ZkTransaction {
  private closed = false;

  private constructor(
    private readonly client: zookeeper.Client,
    private readonly connectString: string,
    private readonly timeoutMs: number,
  ) {
    client.on('expired', () => this.close());
  }

  /** Opens a session; rejects (retriable) when no server answers in time. */
  static async connect(connectString: string, options: ZkTransactionOptions): Promise<ZkTransaction> {
    const timeoutMs = options.timeoutMs ?? options.sessionTimeoutMs;
    const client = zookeeper.createClient(connectString, { sessionTimeout: options.sessionTimeoutMs, spinDelay: 200, retries: 0 });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.close();
        reject(new CoordinationError(`cannot connect to ZooKeeper at ${connectString} within ${timeoutMs} ms`, { retriable: true, context: { connectString, code: 'CONNECTIONLOSS' } }));
      }, timeoutMs);
      client.once('connected', () => {
        clearTimeout(timer);
        resolve();
      });
      client.connect();
    });
    return new ZkTransaction(client, connectString, timeoutMs);
  }

  /** False once closed or expired: open a new one. */
  get isOpen(): boolean {
    return !this.closed;
  }

  /** Applies every op or none. */
  commit(ops: readonly ZkOp[]): Promise<void> {
    if (this.closed) return Promise.reject(this.error('CONNECTIONLOSS', 'the transaction session is closed', { outcomeUnknown: false }));
    const transaction = this.client.transaction();
    for (const op of ops) {
      if (op.op === 'check') transaction.check(op.path, op.version);
      else if (op.op === 'set') transaction.setData(op.path, op.data, op.version);
      else transaction.create(op.path, op.data, zookeeper.CreateMode.PERSISTENT);
    }
    // check() and setData() take `version || -1`, so an expected version 0 (a node never written
    // since its creation) would silently become "any version": put the versions back as given.
    const queued = (transaction as unknown as { ops?: { path: string; version?: number }[] }).ops;
    if (queued?.length !== ops.length || ops.some((op, i) => queued[i]!.path !== op.path)) {
      return Promise.reject(new CoordinationError('node-zookeeper-client no longer queues transaction operations as expected; its version fix cannot apply', { context: { ops: ops.length } }));
    }
    ops.forEach((op, i) => {
      if (op.op !== 'create') queued[i]!.version = op.version;
    });
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        reject(this.error('OPERATIONTIMEOUT', `no answer within ${this.timeoutMs} ms`, { outcomeUnknown: true }));
      }, this.timeoutMs);
      transaction.commit((error, results: readonly { type: number; err?: number }[] | undefined) => {
        clearTimeout(timer);
        if (!error) return resolve();
        const code = (error instanceof zookeeper.Exception ? ERROR_CODES.get(error.getCode()) : undefined) ?? 'UNKNOWN';
        const failedOp = results?.findIndex((r) => r.err !== undefined && r.err !== zookeeper.Exception.OK && r.err !== zookeeper.Exception.RUNTIME_INCONSISTENCY) ?? -1;
        reject(this.error(code, error instanceof zookeeper.Exception ? error.toString() : error.message, { outcomeUnknown: AMBIGUOUS.has(code), ...(failedOp >= 0 ? { failedOp, path: ops[failedOp]!.path } : {}) }));
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }

  private error(code: ZkErrorCode, message: string, context: Record<string, unknown>): CoordinationError {
    return new CoordinationError(`ZooKeeper transaction failed (${code}): ${message}`, {
      retriable: code === 'CONNECTIONLOSS' || code === 'OPERATIONTIMEOUT',
      context: { connectString: this.connectString, code, ...context },
    });
  }
}
