import { access } from 'node:fs/promises';
import { holdsViewAsDefined, type BatchManifest } from '../core/batch/batch-manifest.ts';
import { batchViewFile } from '../core/batch/batch-version-files.ts';
import { masterRelationSql, type SegmentSelection } from '../core/storage/master-relation-sql.ts';
import type { CompiledView } from '../core/views/view-compiler.ts';
import type { EventSchema } from '../core/views/view-definition.ts';

/** An event segment of the master dataset below a run's cut: [firstOffset, endOffsetExclusive) of a partition. */
export interface SegmentRange {
  readonly path: string;
  readonly partition: number;
  readonly firstOffset: number;
  readonly endOffsetExclusive: number;
}

/**
 * The master-dataset rows with `fromCuts[p] <= offset < toCuts[p]`: what a run reads beyond the
 * previous version. Segments wholly below `fromCuts` are not opened at all; rows of a segment that
 * straddles a cut are filtered by offset, so each (partition, offset) is in exactly one of the
 * previous version and this delta (both cuts are exclusive upper bounds).
 */
export function deltaRelationSql(schema: EventSchema, segments: readonly SegmentRange[], fromCuts: Record<string, number>, toCuts: Record<string, number>): string {
  const selection = { wholeFiles: [] as string[], cutFiles: [] as SegmentSelection['cutFiles'][number][] };
  for (const segment of segments) {
    const from = fromCuts[String(segment.partition)] ?? 0;
    const to = toCuts[String(segment.partition)] ?? 0;
    if (segment.endOffsetExclusive <= from || segment.firstOffset >= to) continue;
    if (segment.endOffsetExclusive <= to) selection.wholeFiles.push(segment.path);
    else selection.cutFiles.push({ path: segment.path, partition: segment.partition, cutExclusive: to });
  }
  const relation = masterRelationSql(schema, selection);
  const below = Object.entries(fromCuts)
    .filter(([, cut]) => cut > 0)
    .map(([partition, cut]) => `(_partition = ${Number(partition)} AND _offset < ${cut})`);
  return below.length === 0 ? relation : `(SELECT * FROM ${relation} WHERE NOT (${below.join(' OR ')}))`;
}

/**
 * The previous version's state file of `view`, when it can be extended instead of recomputed:
 * same topic, the same definition (the hash covers the event schema too), and the file still there.
 * Extending is exact because every state column merges exactly (DESIGN.md, "One definition, one
 * engine"): merge(state below the old cut, partial of the delta) = partial below the new cut.
 */
export async function extendableStateFile(rootDir: string, previous: BatchManifest | undefined, topic: string, view: CompiledView): Promise<string | undefined> {
  if (!previous || previous.topic !== topic || !holdsViewAsDefined(previous, view.definition.name, view.definitionHash)) return undefined;
  const file = batchViewFile(rootDir, previous, view.definition.name);
  if (!file) return undefined;
  try {
    await access(file);
    return file;
  } catch {
    // Removed (retention, an operator): recompute the view in full, which is always exact.
    return undefined;
  }
}

/** The share of the new cuts' offsets that lies above the old cuts (how much of the history a delta reads). */
export function deltaShare(fromCuts: Record<string, number>, toCuts: Record<string, number>): number {
  let total = 0;
  let delta = 0;
  for (const [partition, to] of Object.entries(toCuts)) {
    total += to;
    delta += Math.max(0, to - (fromCuts[partition] ?? 0));
  }
  return total === 0 ? 0 : delta / total;
}
