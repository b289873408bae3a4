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
