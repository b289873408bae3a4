import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ZooKeeperTestServer } from '../../test/harness/index.ts';
import { createLogger } from '../observability/logger.ts';
import { ZkLeaderElection, type Leadership } from './leader-election.ts';
import { StandaloneLeaderElection } from './standalone-leader-election.ts';
import { ZkSession } from './zk-session.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

const logger = createLogger('leader-election-test', { level: 'error' });

interface Candidate {
  readonly name: string;
  readonly session: ZkSession;
  readonly election: ZkLeaderElection;
  readonly events: string[];
  term?: Leadership;
}

describe('ZkLeaderElection against a real ZooKeeper', () => {
  let server: ZooKeeperTestServer;
  let root: string;
  const candidates: Candidate[] = [];

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
  });

  afterEach(async () => {
    for (const c of candidates.splice(0)) {
      await c.election.close().catch(() => undefined);
      await c.session.close().catch(() => undefined);
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  async function candidate(name: string): Promise<Candidate> {
    const session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger, reconnectDelayMs: 100 });
    const election = new ZkLeaderElection({ session, path: `${root}/election`, memberId: name, logger });
    const c: Candidate = { name, session, election, events: [] };
    election.addListener({
      isLeader: (leadership) => {
        c.term = leadership;
        c.events.push('leader');
      },
      notLeader: (reason) => {
        c.term = undefined;
        c.events.push(`not:${reason}`);
      },
    });
    candidates.push(c);
    await election.start();
    return c;
  }

  const leaders = () => candidates.filter((c) => c.election.leadership() !== undefined).map((c) => c.name);

  it('elects the first candidate and hands over to the next in line when it leaves', async () => {
    root = `/le-${randomBytes(4).toString('hex')}`;
    const a = await candidate('a');
    const b = await candidate('b');
    const c = await candidate('c');
    await waitFor('a leads', () => a.term !== undefined);
    expect(leaders()).toEqual(['a']);
    expect(await b.election.leaderId()).toBe('a');

    const term = a.term!;
    await a.election.close();
    expect(term.signal.aborted).toBe(true);
    await waitFor('b leads', () => b.term !== undefined);
    expect(leaders()).toEqual(['b']);
    // Only the successor woke up: c watches b, not a.
    expect(c.events).toEqual([]);
    expect(a.election.state).toBe('closed');
  });

  it('ends the term on session expiry, elects another, and rejoins with a new session', async () => {
    root = `/le-${randomBytes(4).toString('hex')}`;
    const a = await candidate('a');
    const b = await candidate('b');
    await waitFor('a leads', () => a.term !== undefined);
    const term = a.term!;
    const client = a.session.client;
    await server.expireSession(client.sessionId, client.sessionPassword);
    await waitFor('a hears of its expiry', () => term.signal.aborted);
    await waitFor('b leads', () => b.term !== undefined);
    expect(a.events[0]).toBe('leader');
    expect(a.events[1]).toMatch(/^not:(connection to ZooKeeper suspended|ZooKeeper session expired)$/);
    // a is back in the election, behind b.
    await waitFor('a rejoined', () => a.session.client !== client && a.session.client.state === 'connected');
    await b.election.close();
    await waitFor('a leads again', () => a.term !== undefined, 15_000);
    expect(a.term).not.toBe(term);
    expect(leaders()).toEqual(['a']);
  });

  it('suspends the term while the server does not answer and resumes it on the same node', async () => {
    root = `/le-${randomBytes(4).toString('hex')}`;
    const a = await candidate('a');
    await waitFor('a leads', () => a.term !== undefined);
    const first = a.term!;
    server.pause();
    try {
      await waitFor('a suspends', () => first.signal.aborted, 5_000);
    } finally {
      server.resume();
    }
    await waitFor('a leads again', () => a.term !== undefined, 10_000);
    expect(a.term!.fencingToken).toBe(first.fencingToken);
  });
});

describe('StandaloneLeaderElection', () => {
  it('leads from start to close', async () => {
    const election = new StandaloneLeaderElection('solo');
    const events: string[] = [];
    election.addListener({ isLeader: () => events.push('leader'), notLeader: (r) => events.push(`not:${r}`) });
    expect(election.leadership()).toBeUndefined();
    await election.start();
    const term = election.leadership()!;
    expect(await election.leaderId()).toBe('solo');
    await election.close();
    expect(term.signal.aborted).toBe(true);
    expect(events).toEqual(['leader', 'not:closed']);
  });
});
