import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBatchManifest, type BatchManifest } from '../../core/batch/batch-manifest.ts';
import { loadConfigFile } from '../../core/config/load-config.ts';
import { ZkBatchManifestStore } from '../../core/coordination/zk-batch-manifest-store.ts';
import { ZkBatchRunRequests } from '../../core/coordination/zk-batch-run-requests.ts';
import { ZkSession } from '../../core/coordination/zk-session.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { ZooKeeperTestServer } from '../harness/index.ts';
import { writeSegments } from '../support/batch-segments.ts';
import { waitFor } from './fixtures/batch-kafka.ts';

const FOUNDATION = fileURLToPath(new URL('../fixtures/foundation.yaml', import.meta.url));
const CANDIDATE = fileURLToPath(new URL('./fixtures/batch-candidate-process.ts', import.meta.url));
const SESSION_TIMEOUT_MS = 2_000;
const TOPIC = 'clicks';
const logger = createLogger('batch-election-test', { level: 'silent' });

interface CandidateEvent {
  readonly event: 'ready' | 'leader' | 'notLeader' | 'run';
  readonly at: number;
  readonly ok?: boolean;
  readonly version?: number;
  readonly reason?: string;
}

interface Candidate {
  readonly memberId: string;
  readonly child: ChildProcess;
  readonly events: CandidateEvent[];
  readonly exited: Promise<void>;
  /** [from, to) while the test had it SIGSTOPped. */
  stoppedAt?: number;
  continuedAt?: number;
  killedAt?: number;
}

/** Leadership intervals [from, to) of a candidate, from its own events (to: kill time or now). */
function leaderIntervals(c: Candidate): [number, number][] {
  const intervals: [number, number][] = [];
  let from: number | undefined;
  for (const e of c.events) {
    if (e.event === 'leader') from = e.at;
    if (e.event === 'notLeader' && from !== undefined) {
      intervals.push([from, e.at]);
      from = undefined;
    }
  }
  if (from !== undefined) intervals.push([from, c.killedAt ?? Date.now()]);
  return intervals;
}

describe('batch-master election with 3 candidate processes on a real ZooKeeper', () => {
  let server: ZooKeeperTestServer;
  let storageDir: string;
  let session: ZkSession;
  const root = `/lambda/election-${randomBytes(4).toString('hex')}`;
  const candidates: Candidate[] = [];
  /** Every version the test saw published, with ZooKeeper's own time of the write (`mtime`). */
  const published: { manifest: BatchManifest; at: number; mtime: number }[] = [];

  function spawnCandidate(memberId: string): Candidate {
    const settings = {
      connectString: server.connectString,
      root,
      storageDir,
      configFile: FOUNDATION,
      memberId,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      schedule: '* * * * * *',
      topic: TOPIC,
      // b or c will be the master that is SIGSTOPped: without the stall check, only ZooKeeper's
      // session fence (and the session events) can keep it from publishing after SIGCONT.
      ...(memberId === 'a' ? {} : { stallLimitMs: 600_000 }),
    };
    const child = spawn(process.execPath, ['--import', 'tsx', CANDIDATE, JSON.stringify(settings)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const events: CandidateEvent[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('{')) events.push(JSON.parse(line) as CandidateEvent);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const candidate: Candidate = { memberId, child, events, exited };
    candidates.push(candidate);
    return candidate;
  }

  const isLeader = (c: Candidate) => {
    const last = c.events.filter((e) => e.event === 'leader' || e.event === 'notLeader').at(-1);
    return last?.event === 'leader' && c.killedAt === undefined;
  };
  const latestVersion = () => published.at(-1)?.manifest.version ?? 0;

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
    storageDir = mkdtempSync(join(tmpdir(), 'batch-election-'));
    const loaded = await loadConfigFile(FOUNDATION);
    const layout = new StorageLayout(storageDir);
    await writeSegments(layout, TOPIC, loaded.schema, { partition: 0, fromOffset: 0, toOffsetExclusive: 1_250, seed: 3 });
    await writeSegments(layout, TOPIC, loaded.schema, { partition: 1, fromOffset: 0, toOffsetExclusive: 900, seed: 4 });
    session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 10_000, logger });
    const currentPath = new ZkBatchManifestStore(session, root, logger).currentPath;
    const record = async (): Promise<void> => {
      const node = await session.client.get(currentPath, () => void record());
      if (!node) {
        // Nothing published yet: a get on a missing node sets no watch, exists does.
        if (await session.client.exists(currentPath, () => void record())) await record();
        return;
      }
      const manifest = parseBatchManifest(node.data);
      if (manifest.version > latestVersion()) published.push({ manifest, at: Date.now(), mtime: node.stat.mtime });
    };
    await record();
    for (const id of ['a', 'b', 'c']) {
      const c = spawnCandidate(id);
      await waitFor(`${id} ready`, () => c.events.some((e) => e.event === 'ready'), 30_000);
    }
  });

  afterAll(async () => {
    for (const c of candidates) {
      if (c.stoppedAt !== undefined && c.continuedAt === undefined) c.child.kill('SIGCONT');
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    }
    await Promise.all(candidates.map((c) => c.exited));
    await session?.close();
    await server?.stop();
    rmSync(storageDir, { recursive: true, force: true });
  });

  it('has exactly one master, which runs the schedule and publishes increasing versions', async () => {
    await waitFor('a published version', () => latestVersion() >= 2, 15_000);
    expect(candidates.filter(isLeader).map((c) => c.memberId)).toEqual(['a']);
    expect(published.every((p) => p.manifest.producedBy === 'a')).toBe(true);
    expect(published[0]!.manifest.cuts).toEqual({ '0': 1_200, '1': 900 });
    for (const c of candidates.slice(1)) expect(c.events.filter((e) => e.event === 'run')).toEqual([]);
  });

  it('after kill -9 of the master, another runs the next batch within the session timeout + 2 s', async () => {
    const master = candidates.find(isLeader)!;
    const before = latestVersion();
    master.killedAt = Date.now();
    master.child.kill('SIGKILL');
    await master.exited;
    await waitFor('a new master publishes', () => published.some((p) => p.manifest.version > before && p.manifest.producedBy !== master.memberId), 15_000);
    const successor = candidates.find(isLeader)!;
    const tookOverAt = successor.events.find((e) => e.event === 'leader')!.at;
    const firstPublication = published.find((p) => p.manifest.producedBy === successor.memberId)!;
    expect(tookOverAt - master.killedAt).toBeLessThanOrEqual(SESSION_TIMEOUT_MS + 2_000);
    // The next batch follows on the successor's first tick (the schedule runs every second).
    expect(firstPublication.at - master.killedAt).toBeLessThanOrEqual(SESSION_TIMEOUT_MS + 2_000 + 1_000);
    expect(candidates.filter(isLeader)).toHaveLength(1);
  });

  it('a master SIGSTOPped past its session timeout publishes nothing after SIGCONT (fencing holds)', async () => {
    const master = candidates.find(isLeader)!;
    const other = candidates.find((c) => c !== master && c.killedAt === undefined)!;
    await waitFor('the master publishes', () => published.at(-1)?.manifest.producedBy === master.memberId, 10_000);
    master.stoppedAt = Date.now();
    master.child.kill('SIGSTOP');
    await waitFor('the other candidate publishes', () => published.some((p) => p.manifest.producedBy === other.memberId), SESSION_TIMEOUT_MS + 8_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    master.continuedAt = Date.now();
    master.child.kill('SIGCONT');
    await waitFor('the paused master to learn it lost', () => master.events.some((e) => e.event === 'notLeader' && e.at >= master.continuedAt!), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 2_500));

    // Nothing published by the paused master once it was stopped (by ZooKeeper's clock: a write
    // sent just before SIGSTOP lands within milliseconds), and no run of it succeeded after.
    expect(published.filter((p) => p.manifest.producedBy === master.memberId && p.mtime > master.stoppedAt! + 500)).toEqual([]);
    // A run whose publication landed just before SIGSTOP reports its outcome only after SIGCONT:
    // any run that succeeded then must be of a version below the successor's first.
    const resumedRuns = master.events.filter((e) => e.event === 'run' && e.at >= master.continuedAt!);
    const successorsFirst = published.find((p) => p.manifest.producedBy === other.memberId)!.manifest.version;
    for (const run of resumedRuns.filter((e) => e.ok)) expect(run.version).toBeLessThan(successorsFirst);
    // The store only ever moved forward, one version per publication.
    const versions = published.map((p) => p.manifest.version);
    expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
    expect(isLeader(other)).toBe(true);
  });

  it('never had two masters: leadership terms of running processes never overlap', () => {
    const terms = candidates.flatMap((c) =>
      leaderIntervals(c).map(([from, to]) => {
        // A term that spans a SIGSTOP ended, for practical purposes, when the process was frozen:
        // it could not act, and after SIGCONT it published nothing (previous test).
        const end = c.stoppedAt !== undefined && from < c.stoppedAt && to >= c.stoppedAt ? c.stoppedAt : to;
        return { memberId: c.memberId, from, to: end };
      }),
    );
    for (const x of terms) {
      for (const y of terms) {
        if (x === y) continue;
        const overlap = Math.min(x.to, y.to) - Math.max(x.from, y.from);
        expect(overlap, `${x.memberId} and ${y.memberId} both led`).toBeLessThanOrEqual(0);
      }
    }
    // Every publication came from the process leading at that moment (ZooKeeper's time of the write).
    for (const p of published) {
      const term = terms.find((t) => t.memberId === p.manifest.producedBy && t.from <= p.mtime && p.mtime <= t.to + 500);
      expect(term, `version ${p.manifest.version} by ${p.manifest.producedBy}`).toBeDefined();
    }
  });

  it('answers `lambda batch run` through the current master', async () => {
    const before = latestVersion();
    const outcome = await new ZkBatchRunRequests(session, root, logger).request({ timeoutMs: 15_000 });
    expect(outcome.ok).toBe(true);
    expect(outcome.version).toBeGreaterThan(before);
  });
});
