import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CoordinationError } from '../errors/index.ts';
import type { Logger } from '../observability/logger.ts';
import { writeFileDurably } from '../storage/durable-files.ts';
import type { StorageLayout } from '../storage/storage-layout.ts';
import type { BatchRunOutcome, BatchRunRequests } from './batch-run-requests.ts';

interface RequestBody {
  readonly requestedAt: string;
  readonly requestedBy?: string;
  readonly outcome?: BatchRunOutcome;
}

const REQUEST_FILE = /^run-\d+-[0-9a-f]{8}\.json$/;

/** Single-node mode's run requests: one JSON file each under `<storage.dir>/batch/requests/`. */
export class LocalBatchRunRequests implements BatchRunRequests {
  readonly dir: string;

  constructor(
    layout: StorageLayout,
    private readonly logger: Logger,
    private readonly pollIntervalMs = 200,
  ) {
    this.dir = join(layout.batchDir(), 'requests');
  }

  async request(options: { timeoutMs?: number; requestedBy?: string } = {}): Promise<BatchRunOutcome> {
    const timeoutMs = options.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, `run-${Date.now()}-${randomBytes(4).toString('hex')}.json`);
    const body: RequestBody = { requestedAt: new Date().toISOString(), ...(options.requestedBy ? { requestedBy: options.requestedBy } : {}) };
    await writeFileDurably(path, JSON.stringify(body));
    try {
      while (Date.now() < deadline) {
        const answer = JSON.parse(await readFile(path, 'utf8')) as RequestBody;
        if (answer.outcome) return answer.outcome;
        await new Promise((resolve) => setTimeout(resolve, this.pollIntervalMs));
      }
      throw new CoordinationError(`no batch run answered the request within ${timeoutMs} ms; is \`lambda start\` running on this storage dir?`, { retriable: true });
    } finally {
      await rm(path, { force: true });
    }
  }

  serve(run: () => Promise<BatchRunOutcome>): () => void {
    let busy = false;
    const pass = async () => {
      if (busy) return;
      busy = true;
      try {
        const pending: { path: string; body: RequestBody }[] = [];
        for (const name of await readdir(this.dir).catch(() => [] as string[])) {
          if (!REQUEST_FILE.test(name)) continue;
          const path = join(this.dir, name);
          const body = JSON.parse(await readFile(path, 'utf8').catch(() => '{}')) as RequestBody;
          if (body.requestedAt && !body.outcome) pending.push({ path, body });
        }
        if (pending.length === 0) return;
        const outcome = await run();
        for (const request of pending) await writeFileDurably(request.path, JSON.stringify({ ...request.body, outcome }));
      } catch (error) {
        this.logger.warn({ err: error, dir: this.dir }, 'cannot serve batch run requests; retrying');
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void pass(), this.pollIntervalMs);
    timer.unref();
    void pass();
    return () => clearInterval(timer);
  }
}
