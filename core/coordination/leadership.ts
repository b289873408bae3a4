/**
 * One term of leadership, handed to `isLeader`. Its signal aborts the moment the term ends (lost,
 * suspended, closed), so work started as leader can stop between steps; publication checks it
 * and, in ZooKeeper, is fenced by the term's election node (see ZkBatchManifestStore).
 */
export interface Leadership {
  readonly memberId: string;
  /** Aborted, with the reason, when this term ends. Never un-aborted: a new term is a new object. */
  readonly signal: AbortSignal;
  /** Identifies the term: the election node's path in ZooKeeper, `local` in single-node mode. */
  readonly fencingToken: string;
}

export interface LeadershipListener {
  isLeader(leadership: Leadership): void;
  notLeader(reason: string): void;
}

export type LeaderElectionState = 'latent' | 'started' | 'closed';

/**
 * A leader election as a small lifecycle object, like Curator's LeaderLatch:
 * latent → start() → started → close() → closed. Listeners hear `isLeader` when a term starts
 * and `notLeader` when it ends; at most one term is open at a time.
 */
export interface LeaderElection {
  readonly memberId: string;
  readonly state: LeaderElectionState;
  start(): Promise<void>;
  /** Ends any term (listeners hear `notLeader`) and leaves the election. */
  close(): Promise<void>;
  /** The open term, if this member leads now. */
  leadership(): Leadership | undefined;
  addListener(listener: LeadershipListener): () => void;
  /** The member id of the current leader as far as this member can tell (for status). */
  leaderId(): Promise<string | undefined>;
}
