import type { CompiledView } from '../views/view-compiler.ts';
import { holdsViewAsDefined, type BatchManifest } from './batch-manifest.ts';

/**
 * The views of `views` that the published version does not hold as defined (absent, or computed
 * from another definition): what a batch master must recompute at once after a definitions change
 * (issue 16), rather than at the next cron tick. With no published version at all there is no
 * history to backfill yet: the first version is the schedule's (or a request's) to make.
 */
export function viewsToBackfill(manifest: BatchManifest | undefined, views: readonly CompiledView[]): string[] {
  if (!manifest) return [];
  return views.filter((v) => !holdsViewAsDefined(manifest, v.definition.name, v.definitionHash)).map((v) => v.definition.name);
}
