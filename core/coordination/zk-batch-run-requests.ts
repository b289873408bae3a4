import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { BatchRunOutcome, BatchRunRequests } from './batch-run-requests.ts';
import type { ZkSession } from './zk-session.ts';

interface RequestBody {
  readonly requestedAt: string;
  readonly requestedBy?: string;
  readonly outcome?: BatchRunOutcome;
  readonly answeredAt?: string;
}

/** Answered requests whose requester never came back for them are removed after this long. */
const ABANDONED_MS = 3_600_000;
const SAFETY_POLL_MS = 5_000;

/**
 * Run requests as persistent sequential nodes under `<root>/batch/requests`: the requester
 * creates one and watches it; the master watches the children, runs once for all pending ones,
 * writes the outcome into each, and the requester deletes its node when it has read it.
 */
export class ZkBatchRunRequests implements BatchRunRequests {
  readonly path: string;

  constructor(
    private readonly session: ZkSession,
    root: string,
    private readonly logger: Logger,
  ) {
    this.path = `${root}/batch/requests`;
  }

  async request(options: { timeoutMs?: number; requestedBy?: string } = {}): Promise<BatchRunOutcome> {
    const deadline = Date.now() + (options.timeoutMs ?? 600_000);
    await this.session.client.mkdirp(this.path);
    const body: RequestBody = { requestedAt: new Date().toISOString(), ...(options.requestedBy ? { requestedBy: options.requestedBy } : {}) };
    const node = await this.session.client.create(`${this.path}/run-`, Buffer.from(JSON.stringify(body)), 'persistent_sequential');
    try {
      while (Date.now() < deadline) {
        let wake: () => void = () => undefined;
        const changed = new Promise<void>((resolve) => (wake = resolve));
        const current = await this.session.client.get(node, () => wake());
        if (!current) throw new CoordinationError(`batch run request ${node} was deleted before it was answered`);
        const answer = JSON.parse(current.data.toString('utf8')) as RequestBody;
        if (answer.outcome) return answer.outcome;
        await Promise.race([changed, new Promise((resolve) => setTimeout(resolve, Math.min(1_000, Math.max(0, deadline - Date.now()))))]);
      }
      throw new CoordinationError(`no batch master answered the run request within ${options.timeoutMs ?? 600_000} ms; is a process with the batch role running?`, {
        retriable: true,
        context: { node },
      });
    } finally {
      await this.session.client.delete(node, -1).catch(() => undefined);
    }
  }

  serve(run: () => Promise<BatchRunOutcome>): () => void {
    let stopped = false;
    let serving = false;
    let again = false;
    const pass = async (): Promise<void> => {
      if (stopped) return;
      if (serving) {
        again = true;
        return;
      }
      serving = true;
      try {
        do {
          again = false;
          await this.answerPending(run, () => void pass(), () => stopped);
        } while (again && !stopped);
      } catch (error) {
        this.logger.warn({ err: error, path: this.path }, 'cannot serve batch run requests; retrying');
      } finally {
        serving = false;
      }
    };
    const unsubscribe = this.session.onEvent((event) => {
      if (event === 'reconnected' || event === 'new-session') void pass();
    });
    const timer = setInterval(() => void pass(), SAFETY_POLL_MS);
    timer.unref();
    void pass();
    return () => {
      stopped = true;
      unsubscribe();
      clearInterval(timer);
    };
  }

  private async answerPending(run: () => Promise<BatchRunOutcome>, onChange: () => void, isStopped: () => boolean): Promise<void> {
    const client = this.session.client;
    await client.mkdirp(this.path);
    const pending: { path: string; body: RequestBody; version: number }[] = [];
    for (const child of (await client.getChildren(this.path, onChange)).sort()) {
      const path = `${this.path}/${child}`;
      const node = await client.get(path);
      if (!node) continue;
      const body = JSON.parse(node.data.toString('utf8')) as RequestBody;
      if (!body.outcome) pending.push({ path, body, version: node.version });
      else if (Date.parse(body.answeredAt ?? body.requestedAt) < Date.now() - ABANDONED_MS) await client.delete(path, -1).catch(() => undefined);
    }
    if (pending.length === 0 || isStopped()) return;
    const outcome = await run();
    for (const request of pending) {
      const answered: RequestBody = { ...request.body, outcome, answeredAt: new Date().toISOString() };
      await client.set(request.path, Buffer.from(JSON.stringify(answered)), request.version).catch(() => undefined);
    }
  }
}
