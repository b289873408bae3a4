import type { Definitions, PublishedDefinitions } from '../definitions/definitions.ts';

/**
 * Where the cluster's views and alerts are published (`<root>/definitions`): ZooKeeper in a
 * cluster, a file single-node. Contract, for every implementation:
 * - `publish` writes `definitions` as version `expectedVersion + 1` only if the current version is
 *   `expectedVersion` (0: nothing published yet); otherwise it throws a ConflictError naming the
 *   current version and writes nothing. So of two changes made against one version, one wins.
 * - A publish that fails otherwise (ZooKeeper unreachable) throws and has written the whole set or
 *   nothing: one document, replaced in one step.
 * - `watch` calls the listener with the current set (if any) and then with newer ones, in
 *   increasing version order, never twice for a version; it may skip versions.
 */
export interface DefinitionsStore {
  current(): Promise<PublishedDefinitions | undefined>;
  publish(definitions: Definitions, expectedVersion: number): Promise<PublishedDefinitions>;
  watch(listener: (published: PublishedDefinitions) => void): () => void;
}

/** The message of the ConflictError every implementation throws. */
export function conflictMessage(expectedVersion: number, currentVersion: number | undefined): string {
  const now = currentVersion === undefined || currentVersion === 0 ? 'none is published yet' : `they are at version ${currentVersion} now`;
  return `the definitions changed meanwhile: this change was made against version ${expectedVersion}, but ${now}; read them again (lambda get definitions) and apply your change to the current version`;
}
