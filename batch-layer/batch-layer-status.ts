import type { BatchManifest } from '../core/batch/batch-manifest.ts';
import type { BatchProgress } from '../core/batch/batch-progress.ts';
import type { BatchRunOutcome } from '../core/coordination/batch-run-requests.ts';

/** What a batch-role process reports in `/v1/status` and `lambda status`. */
export interface BatchLayerStatus {
  readonly state: 'created' | 'started' | 'stopped';
  readonly memberId: string;
  readonly isMaster: boolean;
  /** The current master's member id, as far as this process can tell. */
  readonly master?: string;
  readonly schedule: string;
  readonly nextRunAt?: string;
  readonly running: boolean;
  readonly lastRun?: BatchRunOutcome;
  readonly runsSucceeded: number;
  readonly runsFailed: number;
  /** The definitions version the next run computes. */
  readonly definitionsVersion: number;
  /** Threads the batch recompute's DuckDB runs on (batch.threads, else every core). */
  readonly threads: number;
  /** The running run's progress, or the last run's (from the progress store when there is one). */
  readonly progress?: BatchProgress;
  /** The version serving now (from the manifest store). */
  readonly published?: Pick<BatchManifest, 'version' | 'cuts' | 'eventsRead' | 'finishedAt' | 'durationMs' | 'producedBy'>;
}

/** The published manifest as status shows it: what it covers and who made it, not its file list. */
export function publishedSummary(manifest: BatchManifest): NonNullable<BatchLayerStatus['published']> {
  const { version, cuts, eventsRead, finishedAt, durationMs, producedBy } = manifest;
  return { version, cuts, eventsRead, finishedAt, durationMs, producedBy };
}
