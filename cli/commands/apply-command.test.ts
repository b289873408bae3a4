import { describe, expect, it } from 'vitest';
import type { ViewInfo } from '../../serving-layer/http/api-types.ts';
import { LambdaError } from '../../core/errors/index.ts';
import { waitUntilServing } from './apply-command.ts';

function view(name: string, backfill?: { kind: 'added' | 'changed'; progress: number }): ViewInfo {
  return { name, state: backfill?.kind === 'added' ? 'backfilling' : 'serving', ...(backfill ? { backfill: { ...backfill, definitionsVersion: 4, sinceMs: 0 } } : {}) } as unknown as ViewInfo;
}

/**
 * The node's answers to successive blocking reads, on a clock that each read advances by the
 * time it was asked to wait (what a node answering at its timeout does).
 */
function scripted(answers: ({ views: ViewInfo[]; settled: boolean } | Error)[], clock = { ms: 0 }) {
  const asked: { version: number; timeoutMs: number }[] = [];
  const client = {
    waitForViews: async (version: number, timeoutMs: number) => {
      asked.push({ version, timeoutMs });
      const answer = answers.shift();
      if (!answer) throw new Error('asked once too often');
      if (answer instanceof Error) throw answer;
      if (!answer.settled) clock.ms += timeoutMs;
      return answer;
    },
  };
  return { client, asked, now: () => clock.ms, clock };
}

describe('lambda apply --wait (waitUntilServing)', () => {
  it('prints the backfills as they progress, each change once, and returns when the version serves', async () => {
    const { client, asked, now } = scripted([
      { views: [view('page_traffic')], settled: false },
      { views: [view('page_traffic', { kind: 'changed', progress: 0.1 }), view('by_page', { kind: 'added', progress: 0.42 })], settled: false },
      { views: [view('page_traffic', { kind: 'changed', progress: 0.1 }), view('by_page', { kind: 'added', progress: 0.42 })], settled: false },
      { views: [view('page_traffic'), view('by_page')], settled: true },
    ]);
    const lines: string[] = [];
    await waitUntilServing([{ id: 'node-1', client }], 4, 60_000, (line) => lines.push(line), now);
    expect(lines).toEqual([
      'waiting: the node does not run definitions version 4 yet',
      'waiting: backfilling page_traffic 10% (changed), by_page 42% (added)',
      'serving: definitions version 4, every view exact (waited 15s)',
    ]);
    // Blocking reads of at most 5 s each, for the version applied.
    expect(asked).toEqual(Array.from({ length: 4 }, () => ({ version: 4, timeoutMs: 5_000 })));
  });

  it('fails when the timeout ends first, naming what still backfills; the last read waits only what is left', async () => {
    const { client, asked, now } = scripted([
      { views: [view('by_page', { kind: 'added', progress: 0.3 })], settled: false },
      { views: [view('by_page', { kind: 'added', progress: 0.6 })], settled: false },
    ]);
    const lines: string[] = [];
    await expect(waitUntilServing([{ id: 'node-1', client }], 7, 7_000, (line) => lines.push(line), now)).rejects.toThrow(
      'timed out after 7s waiting for definitions version 7 to serve: backfilling by_page 60% (added)',
    );
    expect(asked.map((a) => a.timeoutMs)).toEqual([5_000, 2_000]);
    expect(lines).toEqual(['waiting: backfilling by_page 30% (added)']);
  });

  it('waits on every serving node at once, each named; an unreachable one is asked again until it answers', async () => {
    const clock = { ms: 0 };
    const unreachable = new LambdaError('cannot reach the node at http://10.0.0.2:8080 (ECONNREFUSED); is it running?', { retriable: true });
    const one = scripted([{ views: [view('by_page')], settled: true }], clock);
    const two = scripted(
      [
        unreachable,
        unreachable,
        { views: [view('by_page', { kind: 'added', progress: 0.5 })], settled: false },
        { views: [view('by_page')], settled: true },
      ],
      clock,
    );
    const pauses: number[] = [];
    const lines: string[] = [];
    const nodes = [{ id: 'node-1', client: one.client }, { id: 'node-2', client: two.client }];
    await waitUntilServing(nodes, 4, 60_000, (line) => lines.push(line), () => clock.ms, async (ms) => {
      pauses.push(ms);
      clock.ms += ms;
    });
    expect(lines).toEqual([
      'node-1: serving definitions version 4',
      'waiting: node-2: unreachable (cannot reach the node at http://10.0.0.2:8080 (ECONNREFUSED); is it running?)',
      'waiting: node-2: backfilling by_page 50% (added)',
      'node-2: serving definitions version 4',
      'serving: definitions version 4 on every serving node (node-1, node-2), every view exact (waited 7s)',
    ]);
    expect(pauses).toEqual([1_000, 1_000]);
  });

  it('fails at once on an answer that asking again cannot change (401), and at the timeout naming what each node lacks', async () => {
    const refused = scripted([new LambdaError('401 from http://node-2/v1/views: missing bearer token', { retriable: false })]);
    await expect(waitUntilServing([{ id: 'node-2', client: refused.client }], 4, 60_000, () => undefined, refused.now)).rejects.toThrow(/401 from/);

    const clock = { ms: 0 };
    const one = scripted([{ views: [view('by_page', { kind: 'added', progress: 0.2 })], settled: false }, { views: [view('by_page', { kind: 'added', progress: 0.9 })], settled: false }], clock);
    const two = scripted([{ views: [view('page_traffic')], settled: false }, { views: [view('page_traffic')], settled: false }], clock);
    await expect(waitUntilServing([{ id: 'node-1', client: one.client }, { id: 'node-2', client: two.client }], 5, 4_000, () => undefined, () => clock.ms)).rejects.toThrow(
      'timed out after 4s waiting for definitions version 5 to serve: node-1: backfilling by_page 20% (added); node-2: does not run definitions version 5 yet',
    );
  });
});
