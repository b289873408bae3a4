import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { retry } from '../retry/retry.ts';
import type { BatchRunOutcome, BatchRunRequests } from './batch-run-requests.ts';
import { isZkError } from './zk-client.ts';
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
/** How long the master keeps trying to write an answer through a dropped connection. */
const ANSWER_DEADLINE_MS = 30_000;
/** An error text in an answer is cut to this many characters: a znode holds at most ~1 MB. */
const MAX_ERROR_CHARS = 8_000;

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
      // Ignored: a request left behind is deleted by the master once it is abandoned (ABANDONED_MS).
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
      // Ignored: an abandoned request that cannot be deleted now is deleted on the next pass.
      else if (Date.parse(body.answeredAt ?? body.requestedAt) < Date.now() - ABANDONED_MS) await client.delete(path, -1).catch(() => undefined);
    }
    if (pending.length === 0 || isStopped()) return;
    const startedAt = new Date().toISOString();
    const outcome = await run().catch((error: unknown): BatchRunOutcome => ({
      ok: false,
      reason: 'requested',
      error: error instanceof Error ? error.message : String(error),
      startedAt,
      finishedAt: new Date().toISOString(),
    }));
    const answer = outcome.error && outcome.error.length > MAX_ERROR_CHARS ? { ...outcome, error: `${outcome.error.slice(0, MAX_ERROR_CHARS)}…` } : outcome;
    await Promise.all(pending.map((request) => this.answer(request, answer)));
  }

  /**
   * Writes `outcome` into a request node, retrying through a dropped connection (the failed run is
   * often why the connection is in trouble), so that the requester hears it rather than waiting
   * out its timeout. Not written (the requester gave up and deleted its node, another master
   * answered): nothing to do. Not writable within the deadline: logged; the request stays pending
   * and the next pass serves it.
   */
  private async answer(request: { path: string; body: RequestBody; version: number }, outcome: BatchRunOutcome): Promise<void> {
    const answered: RequestBody = { ...request.body, outcome, answeredAt: new Date().toISOString() };
    try {
      await retry(() => this.session.client.set(request.path, Buffer.from(JSON.stringify(answered)), request.version), {
        deadlineMs: ANSWER_DEADLINE_MS,
        minDelayMs: 100,
        maxDelayMs: 2_000,
      });
    } catch (error) {
      if (isZkError(error, 'NONODE') || isZkError(error, 'BADVERSION')) {
        this.logger.debug({ path: request.path }, 'batch run request gone or answered meanwhile');
        return;
      }
      this.logger.warn({ err: error, path: request.path, outcome }, 'cannot answer a batch run request; the next pass serves it again');
    }
  }
}
