import { CoordinationError } from '../errors/index.ts';
import type { LeaderElectionState, Leadership, LeadershipListener } from './leadership.ts';

/**
 * What every LeaderElection shares, whatever decides who leads: the lifecycle
 * (latent → started → closed), at most one open term, and the listeners that hear each term
 * begin (`isLeader`) and end (`notLeader`). A listener added during a term hears it at once.
 */
export class ElectionTerms<L extends Leadership> {
  private currentState: LeaderElectionState = 'latent';
  private term: { readonly leadership: L; readonly controller: AbortController } | undefined;
  private readonly listeners = new Set<LeadershipListener>();

  get state(): LeaderElectionState {
    return this.currentState;
  }

  /** latent → started; an election is started once. */
  markStarted(): void {
    if (this.currentState !== 'latent') throw new CoordinationError(`cannot start a leader election that is ${this.currentState}`);
    this.currentState = 'started';
  }

  /** → closed; false when it already was (close is idempotent). Ending the term is the caller's. */
  markClosed(): boolean {
    if (this.currentState === 'closed') return false;
    this.currentState = 'closed';
    return true;
  }

  /** The open term's leadership. */
  get leadership(): L | undefined {
    return this.term?.leadership;
  }

  addListener(listener: LeadershipListener): () => void {
    this.listeners.add(listener);
    if (this.term) listener.isLeader(this.term.leadership);
    return () => this.listeners.delete(listener);
  }

  /** Opens a term, whose signal aborts when it ends, unless one is open; listeners hear it. */
  begin(create: (signal: AbortSignal) => L): void {
    if (this.term) return;
    const controller = new AbortController();
    this.term = { leadership: create(controller.signal), controller };
    for (const listener of [...this.listeners]) listener.isLeader(this.term.leadership);
  }

  /** Ends the open term, if any: its signal aborts with `abortReason`, listeners hear `reason`. */
  end(reason: string, abortReason: Error): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    term.controller.abort(abortReason);
    for (const listener of [...this.listeners]) listener.notLeader(reason);
  }
}
