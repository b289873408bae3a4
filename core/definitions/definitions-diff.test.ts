import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load-config.ts';
import { diffDefinitions, formatDiff, isEmptyDiff, summarizeDiff } from './definitions-diff.ts';

const SOURCE = 'source: {timestamp: ts, schema: {ts: TIMESTAMP, page: VARCHAR, ms: DOUBLE}}\n';
const config = (body: string) => parseConfig(`${SOURCE}${body}`).config;

describe('diffDefinitions', () => {
  it('names views and alerts added, changed and removed, sorted', () => {
    const before = { views: { a: 1, b: 2, c: 3 }, alerts: { x: 1 } };
    const after = { views: { d: 4, c: 30, a: 1 }, alerts: { y: 1 } };
    const diff = diffDefinitions(before, after);
    expect(diff).toEqual({
      views: { added: ['d'], changed: ['c'], removed: ['b'] },
      alerts: { added: ['y'], changed: [], removed: ['x'] },
    });
    expect(formatDiff(diff)).toBe('+ view d\n~ view c\n- view b\n+ alert y\n- alert x');
    expect(summarizeDiff(diff)).toBe('views added d; changed c; removed b | alerts added y; removed x');
  });

  it('sees no change between two spellings of one definition once validated', () => {
    const spelled = config('views: {v: {window: 1m, measures: {n: "count(*)"}}}\n');
    const respelled = config('views: {v: {window: 60s, dimensions: [], measures: {n: "count(*)"}}}\n');
    expect(isEmptyDiff(diffDefinitions(spelled, respelled))).toBe(true);
    expect(formatDiff(diffDefinitions(spelled, respelled))).toBe('no changes');
  });

  it('sees a changed measure, filter or alert threshold', () => {
    const before = config('views: {v: {window: 1m, measures: {n: "count(*)"}}}\nalerts: {hot: {view: v, condition: "n > 5"}}\n');
    const after = config('views: {v: {window: 1m, measures: {n: "count(*)", top: "max(ms)"}}}\nalerts: {hot: {view: v, condition: "n > 6"}}\n');
    expect(diffDefinitions(before, after)).toEqual({ views: { added: [], changed: ['v'], removed: [] }, alerts: { added: [], changed: ['hot'], removed: [] } });
  });

  it('with nothing before, everything is added', () => {
    expect(diffDefinitions(undefined, { views: { v: {} }, alerts: {} }).views.added).toEqual(['v']);
  });
});
