import { blockBoundaryAtOrBelow } from '../core/batch/offset-block.ts';
import type { PartitionChain } from '../core/storage/segment-chain.ts';

/**
 * The batch cut of a partition (DESIGN.md, "Exact handoff"): an exclusive upper bound, a
 * multiple of the speed layer's block size, never above what is archived contiguously.
 */
export function batchCutExclusive(chain: Pick<PartitionChain, 'endOffsetExclusive'>, blockSize: number): number {
  return blockBoundaryAtOrBelow(chain.endOffsetExclusive, blockSize);
}

/** Partitions whose new cut would fall below the published one (the speed layer already dropped those blocks). */
export function regressedCuts(previous: Readonly<Record<string, number>>, next: Readonly<Record<string, number>>): string[] {
  return Object.entries(previous)
    .filter(([partition, cut]) => (next[partition] ?? 0) < cut)
    .map(([partition, cut]) => `partition ${partition}: ${next[partition] ?? 0} < ${cut}`);
}
