import { z } from 'zod';

/**
 * How far the batch master's current (or last) run is, readable by every node (issue 16: a view
 * being backfilled is listed with its progress). Written by the master while it runs, every
 * ~500 ms and at each view boundary; marked finished, not removed, when the run ends, so a node
 * that looks afterwards still sees how the last run went.
 *
 * Fractions are estimates for people, never for exactness: a view is exact only once a published
 * manifest holds it as defined (holdsViewAsDefined). Each is monotonic within one run.
 */
export const batchProgressSchema = z.object({
  /** The definitions version the run computes (the master's, when the run started). */
  definitionsVersion: z.number().int().min(0),
  /** The batch version being written; published as this version if the run succeeds. */
  batchVersion: z.number().int().min(1),
  /** The member id of the batch master running it. */
  producedBy: z.string(),
  startedAtMs: z.number(),
  updatedAtMs: z.number(),
  views: z.record(
    z.string(),
    z.object({
      state: z.enum(['pending', 'running', 'done']),
      fraction: z.number().min(0).max(1),
      /** Extended from the previous version's state with the newer events only (not recomputed). */
      extended: z.boolean().optional(),
    }),
  ),
  /** The whole run's fraction: the views' fractions weighted by the events each has to read. */
  fraction: z.number().min(0).max(1),
  /** Set when the run has ended; absent while it runs. */
  finishedAtMs: z.number().optional(),
  outcome: z.enum(['published', 'failed', 'aborted']).optional(),
  error: z.string().optional(),
});

export type BatchProgress = z.infer<typeof batchProgressSchema>;
export type ViewProgress = BatchProgress['views'][string];

export function isRunning(progress: BatchProgress | undefined): boolean {
  return progress !== undefined && progress.finishedAtMs === undefined;
}

export function parseBatchProgress(data: Buffer | string): BatchProgress {
  return batchProgressSchema.parse(JSON.parse(typeof data === 'string' ? data : data.toString('utf8')));
}

export function serializeBatchProgress(progress: BatchProgress): Buffer {
  return Buffer.from(JSON.stringify(batchProgressSchema.parse(progress)));
}

/** Σ weight·fraction / Σ weight over the views (a view with no weight given counts 1); 0 before any view is planned. */
export function overallFraction(views: BatchProgress['views'], weights: ReadonlyMap<string, number>): number {
  let total = 0;
  let done = 0;
  for (const [name, view] of Object.entries(views)) {
    const weight = weights.get(name) ?? 1;
    total += weight;
    done += weight * view.fraction;
  }
  return total === 0 ? 0 : Math.min(1, done / total);
}
