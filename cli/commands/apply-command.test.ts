import { describe, expect, it } from 'vitest';
import type { ViewInfo } from '../../serving-layer/http/api-types.ts';
import { waitUntilServing } from './apply-command.ts';

function view(name: string, backfill?: { kind: 'added' | 'changed'; progress: number }): ViewInfo {
  return { name, state: backfill?.kind === 'added' ? 'backfilling' : 'serving', ...(backfill ? { backfill: { ...backfill, definitionsVersion: 4, sinceMs: 0 } } : {}) } as unknown as ViewInfo;
}

/**
 * The node's answers to successive blocking reads, on a clock that each read advances by the
 * time it was asked to wait (what a node answering at its timeout does).
 */
function scripted(answers: { views: ViewInfo[]; settled: boolean }[]) {
  let clock = 0;
  const asked: { version: number; timeoutMs: number }[] = [];
  const client = {
    waitForViews: async (version: number, timeoutMs: number) => {
      asked.push({ version, timeoutMs });
      const answer = answers.shift();
      if (!answer) throw new Error('asked once too often');
      if (!answer.settled) clock += timeoutMs;
      return answer;
    },
  };
  return { client, asked, now: () => clock };
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
    await waitUntilServing(client, 4, 60_000, (line) => lines.push(line), now);
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
    await expect(waitUntilServing(client, 7, 7_000, (line) => lines.push(line), now)).rejects.toThrow(
      'timed out after 7s waiting for definitions version 7 to serve; still backfilling: by_page 60% (added)',
    );
    expect(asked.map((a) => a.timeoutMs)).toEqual([5_000, 2_000]);
    expect(lines).toEqual(['waiting: backfilling by_page 30% (added)']);
  });
});
