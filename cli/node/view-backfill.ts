import { isRunning, type BatchProgress } from '../../core/batch/batch-progress.ts';
import { ConflictError } from '../../core/errors/index.ts';
import type { PendingView } from '../../serving-layer/engine/live-views.ts';
import type { BackfillInfo } from '../../serving-layer/http/api-types.ts';

/**
 * How far the backfill of a pending view definition is, from the batch master's progress record:
 * its view's fraction in a run that computes these definitions (or newer), 1 once such a run
 * computed it (the view serves at that version's handoff), else 0 (no such run yet).
 */
export function backfillOf(pending: PendingView, progress: BatchProgress | undefined): BackfillInfo {
  const run = progress && progress.definitionsVersion >= pending.definitionsVersion ? progress : undefined;
  const view = run?.views[pending.name];
  const computed = run && (!isRunning(run) ? run.outcome === 'published' : view?.state === 'done');
  return {
    kind: pending.kind,
    progress: computed ? 1 : (view?.fraction ?? 0),
    definitionsVersion: pending.definitionsVersion,
    sinceMs: pending.sinceMs,
  };
}

/** A query named a view that is not exact yet: HTTP 409, with how far its backfill is. */
export class ViewBackfillingError extends ConflictError {
  constructor(
    readonly view: string,
    progress: number,
  ) {
    super(`view ${view} is backfilling, ${Math.floor(progress * 100)}%; it answers once its history is computed (GET /v1/views shows the progress)`);
  }
}

/**
 * The added view a failed query tried to read, if its error is DuckDB's for a missing table or
 * table function (`rollup_<view>`) and that name is a view still backfilling.
 */
export function backfillingViewIn<T extends { readonly name: string; readonly kind?: PendingView['kind'] }>(message: string, pending: (name: string) => T | undefined): T | undefined {
  const missing = /(?:Table|Table Function) with name "?([^"\s!]+)"? does not exist/i.exec(message)?.[1];
  if (!missing) return undefined;
  const found = pending(missing) ?? pending(missing.replace(/^rollup_/, ''));
  return found && found.kind !== 'changed' ? found : undefined;
}
