import { z } from 'zod';

/**
 * What a batch version covers and where it is; published in ZooKeeper at `batch/current`.
 * `cuts[p]` is an exclusive upper bound: the version holds every record of partition p with
 * offset < cuts[p], and realtime state must hold exactly the records at or above it.
 */
export const batchManifestSchema = z.object({
  version: z.number().int().min(1),
  topic: z.string(),
  /** partition → cutExclusive. A partition absent here has cut 0 (nothing in the batch). */
  cuts: z.record(z.string().regex(/^\d+$/), z.number().int().min(0)),
  /** Speed-layer offset block size the cuts are rounded down to. */
  blockSize: z.number().int().min(1),
  /** Directory of the version's files. */
  location: z.string(),
  views: z.record(
    z.string(),
    z.object({
      definitionHash: z.string(),
      file: z.string(),
      rows: z.number().int().min(0),
    }),
  ),
  /** Rows read from the master dataset below the cuts, and rejected records below them. */
  eventsRead: z.number().int().min(0),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number().min(0),
  /** The member id of the batch master that produced it. */
  producedBy: z.string(),
});

export type BatchManifest = z.infer<typeof batchManifestSchema>;

/** The cut of one partition: offsets below it are in the batch. */
export function cutExclusive(manifest: BatchManifest | undefined, partition: number): number {
  return manifest?.cuts[String(partition)] ?? 0;
}

/** A manifest's cuts by partition: offsets below `cutExclusive` are in that batch version. */
export function cutsOf(manifest: BatchManifest): Map<number, number> {
  return new Map(Object.entries(manifest.cuts).map(([partition, cut]) => [Number(partition), cut]));
}

/** Cuts by partition: a manifest's (keyed by the partition as a string), or as `cutsOf` gives them. */
export type Cuts = ReadonlyMap<number, number> | Readonly<Record<string, number>>;

/** Whether two sets of cuts cut every partition at the same offset (a partition missing is cut at 0). */
export function sameCuts(a: Cuts, b: Cuts): boolean {
  const byPartition = (cuts: Cuts) => (cuts instanceof Map ? cuts : new Map(Object.entries(cuts).map(([p, cut]) => [Number(p), cut])));
  const [x, y] = [byPartition(a), byPartition(b)];
  return [...new Set([...x.keys(), ...y.keys()])].every((p) => (x.get(p) ?? 0) === (y.get(p) ?? 0));
}

/**
 * True when the version's state of `view` was computed from the definition with `definitionHash`.
 * Otherwise a node serves no batch rows for it (they would merge with another definition's).
 */
export function holdsViewAsDefined(manifest: BatchManifest, view: string, definitionHash: string): boolean {
  return manifest.views[view]?.definitionHash === definitionHash;
}

export function parseBatchManifest(json: string | Buffer): BatchManifest {
  return batchManifestSchema.parse(JSON.parse(typeof json === 'string' ? json : json.toString('utf8')));
}

export function serializeBatchManifest(manifest: BatchManifest): Buffer {
  return Buffer.from(JSON.stringify(batchManifestSchema.parse(manifest)));
}
