import { describe, expect, it } from 'vitest';
import type { BatchProgress } from '../../core/batch/batch-progress.ts';
import type { BoundView } from '../../core/views/bind-views.ts';
import { createLogger } from '../../core/observability/logger.ts';
import type { PendingView } from '../../serving-layer/engine/live-views.ts';
import { NodeStatus, type NodeStatusSources } from './node-status.ts';

function bound(name: string): BoundView {
  return { view: { definition: { name, windowMs: null, dimensions: ['page'], measures: [] }, definitionHash: `${name}-hash` }, outputColumns: [{ name: 'page', type: 'VARCHAR' }] } as unknown as BoundView;
}

/**
 * GET /v1/views while a handoff commits: the views as LiveViews shows them (served, pending) change
 * while the batch master's progress record is read, as a handoff promoting the added view would.
 */
describe('NodeStatus.views', () => {
  it('lists a view promoted while the progress was read once, as serving', async () => {
    const hits = bound('hits');
    const pendingHits: PendingView = { name: 'hits', kind: 'added', definitionHash: 'hits-hash', bound: hits, definitionsVersion: 2, sinceMs: 0 };
    const state: { served: BoundView[]; pending: PendingView[] } = { served: [bound('page_traffic')], pending: [pendingHits] };
    const liveViews = {
      servedViews: () => state.served,
      pendingViews: () => state.pending,
      pendingView: (name: string) => state.pending.find((p) => p.name === name),
    };
    const realtime = { appliedManifest: undefined, speed: { status: () => ({ microBatches: { lastCommittedAtMs: undefined } }) }, liveViews };
    const batchProgress = {
      current: async (): Promise<BatchProgress | undefined> => {
        // The handoff commits while this is read: hits serves from now on.
        state.served = [...state.served, hits];
        state.pending = [];
        return undefined;
      },
    };
    const status = new NodeStatus({ logger: createLogger('node-status-test', { level: 'silent' }), realtime, coordination: { batchProgress } } as unknown as NodeStatusSources);
    const views = await status.views();
    expect(views.map((v) => [v.name, v.state])).toEqual([
      ['page_traffic', 'serving'],
      ['hits', 'serving'],
    ]);
  });
});

/**
 * GET /v1/views?waitFor=N: answered at the commit that makes definitions version N serve with
 * every view exact, never before; false at the timeout or when the client goes away.
 */
describe('NodeStatus.viewsSettled', () => {
  function node(initial: { version: number; pending: PendingView[] }) {
    const state = { ...initial };
    const listeners = new Set<() => void>();
    const liveViews = {
      get version() {
        return state.version;
      },
      servedViews: () => [bound('page_traffic')],
      pendingViews: () => state.pending,
      pendingView: (name: string) => state.pending.find((p) => p.name === name),
      onCommitted: (listener: () => void) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    };
    const realtime = { appliedManifest: undefined, speed: { status: () => ({ microBatches: { lastCommittedAtMs: undefined } }) }, liveViews };
    const status = new NodeStatus({ logger: createLogger('node-status-test', { level: 'silent' }), realtime, coordination: {} } as unknown as NodeStatusSources);
    /** A transaction committed with `change` made: what LiveViews.committed() tells its listeners. */
    const commit = (change: Partial<typeof initial>) => {
      Object.assign(state, change);
      for (const listener of [...listeners]) listener();
    };
    return { status, commit, listeners };
  }
  const pendingHits: PendingView = { name: 'hits', kind: 'added', definitionHash: 'hits-hash', bound: bound('hits'), definitionsVersion: 3, sinceMs: 0 };

  it('answers true at once when the version serves with nothing pending, and only then', async () => {
    const { status, listeners } = node({ version: 3, pending: [] });
    await expect(status.viewsSettled(3, 10_000)).resolves.toBe(true);
    await expect(status.viewsSettled(2, 10_000)).resolves.toBe(true);
    expect(listeners.size).toBe(0);
  });

  it('waits for the version to be applied and its backfills to serve, woken by commits', async () => {
    const { status, commit, listeners } = node({ version: 2, pending: [] });
    let outcome: boolean | undefined;
    const waiting = status.viewsSettled(3, 10_000).then((settled) => (outcome = settled));
    // Version 3 applied, its view backfilling: not yet.
    commit({ version: 3, pending: [pendingHits] });
    await new Promise((resolve) => setImmediate(resolve));
    expect(outcome).toBeUndefined();
    // A commit that changes nothing the wait cares about: still waiting.
    commit({});
    await new Promise((resolve) => setImmediate(resolve));
    expect(outcome).toBeUndefined();
    // The handoff promotes it.
    commit({ pending: [] });
    await expect(waiting).resolves.toBe(true);
    expect(listeners.size).toBe(0);
  });

  it('answers false at the timeout, or when the client goes away, and stops listening', async () => {
    const { status, listeners } = node({ version: 3, pending: [pendingHits] });
    const started = performance.now();
    await expect(status.viewsSettled(3, 50)).resolves.toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    const gone = new AbortController();
    const waiting = status.viewsSettled(3, 60_000, gone.signal);
    gone.abort();
    await expect(waiting).resolves.toBe(false);
    expect(listeners.size).toBe(0);
    await expect(status.viewsSettled(3, 60_000, gone.signal)).resolves.toBe(false);
  });

  it('answers false on a node that serves no views', async () => {
    const status = new NodeStatus({ logger: createLogger('node-status-test', { level: 'silent' }), coordination: {} } as unknown as NodeStatusSources);
    await expect(status.viewsSettled(1, 10_000)).resolves.toBe(false);
  });
});
