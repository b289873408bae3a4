import type { BatchManifest } from '../batch/batch-manifest.ts';
import type { Leadership } from './leadership.ts';

/**
 * Where the serving batch version is published (`batch/current`, DESIGN.md "Coordination"):
 * ZooKeeper in a cluster, a file in single-node mode. Contract, for every implementation:
 * - `publish` succeeds only while `leadership` holds, and only with a version above the current
 *   one; otherwise it throws a CoordinationError and changes nothing.
 * - `watch` calls the listener with the current manifest (if any) and then with every newer one,
 *   in increasing version order, never twice for a version; it may skip versions.
 */
export interface BatchManifestStore {
  current(): Promise<BatchManifest | undefined>;
  publish(manifest: BatchManifest, leadership: Leadership): Promise<void>;
  watch(listener: (manifest: BatchManifest) => void): () => void;
}
