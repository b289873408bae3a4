import { CoordinationError } from '../errors/index.ts';
import type { LeaderElection, LeaderElectionState, Leadership, LeadershipListener } from './leadership.ts';

/** Single-node mode: the only process is its own batch master from start() to close(). */
export class StandaloneLeaderElection implements LeaderElection {
  private currentState: LeaderElectionState = 'latent';
  private term: { leadership: Leadership; controller: AbortController } | undefined;
  private readonly listeners = new Set<LeadershipListener>();

  constructor(readonly memberId: string) {}

  get state(): LeaderElectionState {
    return this.currentState;
  }

  async start(): Promise<void> {
    if (this.currentState !== 'latent') throw new CoordinationError(`cannot start a leader election that is ${this.currentState}`);
    this.currentState = 'started';
    const controller = new AbortController();
    this.term = { controller, leadership: { memberId: this.memberId, signal: controller.signal, fencingToken: 'local' } };
    for (const listener of [...this.listeners]) listener.isLeader(this.term.leadership);
  }

  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    const term = this.term;
    this.term = undefined;
    if (!term) return;
    term.controller.abort(new CoordinationError('leader election closed'));
    for (const listener of [...this.listeners]) listener.notLeader('closed');
  }

  leadership(): Leadership | undefined {
    return this.term?.leadership;
  }

  addListener(listener: LeadershipListener): () => void {
    this.listeners.add(listener);
    if (this.term) listener.isLeader(this.term.leadership);
    return () => this.listeners.delete(listener);
  }

  async leaderId(): Promise<string | undefined> {
    return this.term ? this.memberId : undefined;
  }
}
