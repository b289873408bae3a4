import { CoordinationError } from '../errors/index.ts';
import { ElectionTerms } from './election-terms.ts';
import type { LeaderElection, LeaderElectionState, Leadership, LeadershipListener } from './leadership.ts';

/** Single-node mode: the only process is its own batch master from start() to close(). */
export class StandaloneLeaderElection implements LeaderElection {
  private readonly terms = new ElectionTerms<Leadership>();

  constructor(readonly memberId: string) {}

  get state(): LeaderElectionState {
    return this.terms.state;
  }

  async start(): Promise<void> {
    this.terms.markStarted();
    this.terms.begin((signal) => ({ memberId: this.memberId, signal, fencingToken: 'local' }));
  }

  async close(): Promise<void> {
    if (this.terms.markClosed()) this.terms.end('closed', new CoordinationError('leader election closed'));
  }

  leadership(): Leadership | undefined {
    return this.terms.leadership;
  }

  addListener(listener: LeadershipListener): () => void {
    return this.terms.addListener(listener);
  }

  async leaderId(): Promise<string | undefined> {
    return this.terms.leadership ? this.memberId : undefined;
  }
}
