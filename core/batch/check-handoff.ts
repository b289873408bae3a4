import { LambdaError } from '../errors/index.ts';
import { cutsOf, type BatchManifest } from './batch-manifest.ts';

/**
 * Step 0 of the batch handoff (serving-layer/engine/batch-handoff.ts), run by the speed layer.
 * Throws unless realtime state can be handed over to `manifest` exactly: same topic, every cut on
 * a block boundary (blocks are what can be dropped), and no cut below the current one (realtime
 * state no longer holds what lies between). Not retriable: the same manifest fails again.
 */
export function checkHandoff(
  manifest: BatchManifest,
  realtime: { readonly topic: string; readonly blockSize: number; readonly cutExclusive: (partition: number) => number },
): void {
  const context = { topic: realtime.topic, version: manifest.version };
  if (manifest.topic !== realtime.topic) {
    throw new LambdaError(`batch version ${manifest.version} is for topic "${manifest.topic}", not "${realtime.topic}"`, { context });
  }
  for (const [partition, cut] of cutsOf(manifest)) {
    if (cut % realtime.blockSize !== 0) {
      throw new LambdaError(
        `batch version ${manifest.version} cuts partition ${partition} at offset ${cut}, not a multiple of speed.blockSize ${realtime.blockSize}; ` +
          'the batch and speed layers must use the same speed.blockSize',
        { context: { ...context, partition } },
      );
    }
    const current = realtime.cutExclusive(partition);
    if (cut < current) {
      throw new LambdaError(
        `batch version ${manifest.version} moves the cut of partition ${partition} back from ${current} to ${cut}; ` +
          'restart the speed layer from that version to rebuild realtime state',
        { context: { ...context, partition } },
      );
    }
  }
}
