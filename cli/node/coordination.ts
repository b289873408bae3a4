import type { LoadedConfig } from '../../core/config/load-config.ts';
import type { BatchManifestStore } from '../../core/coordination/batch-manifest-store.ts';
import type { BatchProgressStore } from '../../core/coordination/batch-progress-store.ts';
import { LocalBatchProgressStore } from '../../core/coordination/local-batch-progress-store.ts';
import { ZkBatchProgressStore } from '../../core/coordination/zk-batch-progress-store.ts';
import type { BatchRunRequests } from '../../core/coordination/batch-run-requests.ts';
import type { DefinitionsStore } from '../../core/coordination/definitions-store.ts';
import { LocalDefinitionsStore } from '../../core/coordination/local-definitions-store.ts';
import { ZkDefinitionsStore } from '../../core/coordination/zk-definitions-store.ts';
import { ZkLeaderElection } from '../../core/coordination/leader-election.ts';
import type { LeaderElection } from '../../core/coordination/leadership.ts';
import { LocalBatchManifestStore } from '../../core/coordination/local-batch-manifest-store.ts';
import { LocalBatchRunRequests } from '../../core/coordination/local-batch-run-requests.ts';
import { LocalMemberRegistry, ZkMemberRegistry, type MemberRegistry } from '../../core/coordination/member-registry.ts';
import { StandaloneLeaderElection } from '../../core/coordination/standalone-leader-election.ts';
import { ZkBatchManifestStore } from '../../core/coordination/zk-batch-manifest-store.ts';
import { ZkBatchRunRequests } from '../../core/coordination/zk-batch-run-requests.ts';
import { ZkSession } from '../../core/coordination/zk-session.ts';
import { isZkError } from '../../core/coordination/zk-client.ts';
import { LocalPartitionOwnership, type PartitionOwnership } from '../../core/coordination/partition-ownership.ts';
import { ZkPartitionOwnership } from '../../core/coordination/zk-partition-ownership.ts';
import type { Logger } from '../../core/observability/logger.ts';
import { isRetriableError, retry } from '../../core/retry/retry.ts';
import type { StorageLayout } from '../../core/storage/storage-layout.ts';

/** Everything a process coordinates through: ZooKeeper in a cluster, local files single-node. */
export interface Coordination {
  readonly mode: 'cluster' | 'single-node';
  readonly election: LeaderElection;
  readonly manifestStore: BatchManifestStore;
  /** The batch master's run progress (`<root>/batch/progress`, or this process's memory single-node). */
  readonly batchProgress: BatchProgressStore;
  readonly runRequests: BatchRunRequests;
  readonly members: MemberRegistry;
  /** The views and alerts the cluster runs (`<root>/definitions`, or definitions.json single-node). */
  readonly definitions: DefinitionsStore;
  /** Which archiver archives which partition: ZooKeeper locks in a cluster, this process single-node. */
  archiverOwnership(partitionCount: () => Promise<number>): PartitionOwnership;
  /** The ZooKeeper session, in a cluster. */
  readonly session?: ZkSession;
  readonly root?: string;
  close(): Promise<void>;
}

export async function createCoordination(loaded: LoadedConfig, layout: StorageLayout, memberId: string, logger: Logger): Promise<Coordination> {
  const zookeeper = loaded.config.zookeeper;
  if (!zookeeper) {
    return {
      mode: 'single-node',
      election: new StandaloneLeaderElection(memberId),
      manifestStore: new LocalBatchManifestStore(layout),
      batchProgress: new LocalBatchProgressStore(),
      runRequests: new LocalBatchRunRequests(layout, logger),
      members: new LocalMemberRegistry(),
      definitions: new LocalDefinitionsStore(layout),
      archiverOwnership: (partitionCount) => new LocalPartitionOwnership(memberId, partitionCount),
      close: async () => undefined,
    };
  }
  const session = await ZkSession.open({ connectString: zookeeper.connect, sessionTimeoutMs: zookeeper.sessionTimeout, logger });
  const { root } = zookeeper;
  // A node restarted at once waits for its previous session's entry to expire.
  const members = new ZkMemberRegistry(session, root, logger, zookeeper.sessionTimeout + 1_000);
  return {
    mode: 'cluster',
    election: new ZkLeaderElection({ session, path: `${root}/election`, memberId, logger }),
    manifestStore: new ZkBatchManifestStore(session, root, logger),
    batchProgress: new ZkBatchProgressStore(session, root, logger),
    runRequests: new ZkBatchRunRequests(session, root, logger),
    members,
    definitions: new ZkDefinitionsStore(session, root, logger),
    archiverOwnership: (partitionCount) => new ZkPartitionOwnership({ session, path: `${root}/archivers`, nodeId: memberId, partitionCount, logger }),
    session,
    root,
    close: async () => {
      await members.close();
      await session.close();
    },
  };
}

/**
 * The archiver's consumer group: one per node (`<root>-archiver-<node id>`), a group of one
 * member that reads the partitions ZooKeeper gives this node (see ZkPartitionOwnership).
 */
export function archiverGroupId(loaded: LoadedConfig, nodeId: string): string {
  const root = loaded.config.zookeeper?.root ?? '/lambda/local';
  return `${root.replace(/^\//, '').replaceAll('/', '-')}-archiver-${nodeId}`;
}

/** How long a starting node retries coordination calls that time out before it gives up. */
const STARTUP_COORDINATION_DEADLINE_MS = 30_000;

/**
 * A coordination call of a starting node: retried while it fails retriably (a ZooKeeper slow to
 * answer under load), up to 30 s; a lasting error (a duplicate node id) stops the start at once.
 * A session that expired or was closed under the call is retriable here too: the session opens a
 * new one (ZkSession), and a node whose start was held up long enough to lose its first session
 * (a busy machine) must not give up on that account.
 */
export function startupCall<T>(call: () => Promise<T>): Promise<T> {
  return retry(call, { deadlineMs: STARTUP_COORDINATION_DEADLINE_MS, maxDelayMs: 1_000, isRetriable: retriableAtStartup });
}

function retriableAtStartup(error: unknown): boolean {
  return isRetriableError(error) || isZkError(error, 'SESSIONEXPIRED') || isZkError(error, 'CLOSING');
}
