import { describe, expect, it } from 'vitest';
import { ElectionTerms } from './election-terms.ts';
import type { Leadership } from './leadership.ts';

function recorder() {
  const heard: string[] = [];
  return { heard, listener: { isLeader: (l: Leadership) => heard.push(`leader ${l.fencingToken}`), notLeader: (reason: string) => heard.push(`not leader: ${reason}`) } };
}

const term = (token: string) => (signal: AbortSignal): Leadership => ({ memberId: 'm', fencingToken: token, signal });

describe('ElectionTerms', () => {
  it('starts once and closes once', () => {
    const terms = new ElectionTerms<Leadership>();
    terms.markStarted();
    expect(() => terms.markStarted()).toThrow('cannot start a leader election that is started');
    expect(terms.markClosed()).toBe(true);
    expect(terms.markClosed()).toBe(false);
    expect(terms.state).toBe('closed');
  });

  it('keeps at most one term open, and a listener added during a term hears it at once', () => {
    const terms = new ElectionTerms<Leadership>();
    const early = recorder();
    terms.addListener(early.listener);
    terms.begin(term('a'));
    terms.begin(term('b'));
    const late = recorder();
    terms.addListener(late.listener);
    expect(early.heard).toEqual(['leader a']);
    expect(late.heard).toEqual(['leader a']);
  });

  it("aborts the term's signal with the reason given and tells every listener, once", () => {
    const terms = new ElectionTerms<Leadership>();
    const { heard, listener } = recorder();
    const remove = terms.addListener(listener);
    terms.begin(term('a'));
    const signal = terms.leadership!.signal;
    terms.end('session expired', new Error('leadership lost'));
    terms.end('again', new Error('again'));
    expect(signal.reason).toEqual(new Error('leadership lost'));
    expect(terms.leadership).toBeUndefined();
    expect(heard).toEqual(['leader a', 'not leader: session expired']);
    remove();
    terms.begin(term('b'));
    expect(heard).toHaveLength(2);
  });
});
