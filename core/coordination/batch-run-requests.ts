/** Why a batch run happened; `definitions`: a backfill of views the published version lacks (issue 16). */
export type BatchRunReason = 'scheduled' | 'requested' | 'definitions';

/** How a batch run ended. Failures are reported, not thrown: the previous version keeps serving. */
export interface BatchRunOutcome {
  readonly ok: boolean;
  readonly reason: BatchRunReason;
  /** The version published, when ok. */
  readonly version?: number;
  readonly error?: string;
  /** The run stopped because this process stopped being the batch master: not a failure. */
  readonly aborted?: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
}

/**
 * `lambda batch run`: any process asks, the batch master answers. Requests survive a change of
 * master (a new master serves the requests its predecessor left unanswered), and any number of
 * requests made during one run are answered by the next run.
 */
export interface BatchRunRequests {
  /** Asks for a run now; resolves with the outcome of the run that served the request. */
  request(options?: { timeoutMs?: number; requestedBy?: string }): Promise<BatchRunOutcome>;
  /** Master side: answers pending and future requests with `run` until the returned stop is called. */
  serve(run: () => Promise<BatchRunOutcome>): () => void;
}
