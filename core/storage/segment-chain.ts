import { join } from 'node:path';
import { listDir } from './list-dir.ts';
import { StorageLayout, type SegmentName } from './storage-layout.ts';

/**
 * Which files of the master dataset hold each `(partition, offset)` exactly once.
 *
 * A partition directory holds segments (`.parquet`) and retention-gap markers (`.gap`, offsets
 * Kafka deleted before they were archived), each naming an offset range [first, endExclusive).
 * Writers only ever add a file that starts where the chain ended when they looked, and the
 * compactor adds a file spanning consecutive chain items before removing them, so the files can
 * overlap after a crash, a compaction or a rebalance, but one tiling always exists:
 *
 *   start at the lowest first offset and reach the furthest end any sequence of consecutive
 *   files reaches from there. Ties: among the sequences reaching that end, the one of fewest
 *   files (a merged segment before its parts); among those, at each step the file reaching
 *   furthest, and a segment before a gap marker of the same range.
 *
 * Taking the furthest-reaching file at each step is not enough: with [10,30), [10,15), [15,50)
 * it stops at 30, and the archiver would then re-archive 30..50.
 *
 * The chain is a pure function of the set of file names. Every reader (the archiver's resume
 * position, the batch recompute, the serving layer's `events` table) must read the chain, never
 * a glob of the directory, or it would count overlapping records twice.
 */
export type ChainItemKind = 'segment' | 'gap';

export interface ChainItem extends SegmentName {
  readonly kind: ChainItemKind;
  /** Absolute (or storage-root-relative, as the layout was built) path of the file. */
  readonly path: string;
}

export interface PartitionChain {
  readonly topic: string;
  readonly partition: number;
  /** First offset the chain covers (0 unless older history was removed by hand). */
  readonly startOffset: number;
  /** Offsets below this and at or above `startOffset` are archived or recorded as a gap. */
  readonly endOffsetExclusive: number;
  /** Segments and gap markers in offset order, each starting where the previous one ends. */
  readonly items: readonly ChainItem[];
  /** Files wholly inside the chain's range but not part of it: safe to delete once no reader uses them. */
  readonly superseded: readonly ChainItem[];
}

const GAP_FILE = /^(.+)-p(\d+)-(\d{20})-(\d{20})\.gap$/;

export function gapFileName(gap: SegmentName): string {
  return StorageLayout.segmentFileName(gap).replace(/\.parquet$/, '.gap');
}

export function parseGapFileName(fileName: string): SegmentName | undefined {
  const match = GAP_FILE.exec(fileName);
  if (!match) return undefined;
  const [, topic, partition, first, end] = match;
  return { topic: topic!, partition: Number(partition), firstOffset: Number(first), endOffsetExclusive: Number(end) };
}

/** Parses a master-partition directory entry into a chain item, or undefined for other files. */
export function parseChainItem(dir: string, fileName: string): ChainItem | undefined {
  const segment = StorageLayout.parseSegmentFileName(fileName);
  if (segment) return { ...segment, kind: 'segment', path: join(dir, fileName) };
  const gap = parseGapFileName(fileName);
  if (gap) return { ...gap, kind: 'gap', path: join(dir, fileName) };
  return undefined;
}

/** The chain through `items` (all of one topic and partition). Pure. */
export function resolveChain(topic: string, partition: number, items: readonly ChainItem[]): PartitionChain {
  const valid = items.filter((i) => i.endOffsetExclusive > i.firstOffset);
  const byStart = groupBy(valid, (i) => i.firstOffset);
  const byEnd = groupBy(valid, (i) => i.endOffsetExclusive);
  const startOffset = valid.length === 0 ? 0 : Math.min(...valid.map((i) => i.firstOffset));
  // Offsets reachable from the start: every file ends above where it starts, so ascending order
  // visits an offset only after every file that can end there.
  const reachable = new Set([startOffset]);
  for (const offset of [...new Set(valid.flatMap((i) => [i.firstOffset, i.endOffsetExclusive]))].sort((a, b) => a - b)) {
    if ((byEnd.get(offset) ?? []).some((i) => reachable.has(i.firstOffset))) reachable.add(offset);
  }
  const end = Math.max(...reachable);
  // Fewest files from each reachable offset to `end`, in descending offset order.
  const filesToEnd = new Map([[end, 0]]);
  for (const offset of [...reachable].sort((a, b) => b - a)) {
    for (const item of byStart.get(offset) ?? []) {
      const after = filesToEnd.get(item.endOffsetExclusive);
      if (after !== undefined && after + 1 < (filesToEnd.get(offset) ?? Infinity)) filesToEnd.set(offset, after + 1);
    }
  }
  const chain: ChainItem[] = [];
  for (let at = startOffset; at !== end; ) {
    const onShortest = (byStart.get(at) ?? []).filter((i) => filesToEnd.get(i.endOffsetExclusive) === filesToEnd.get(at)! - 1);
    const best = onShortest.reduce((a, b) =>
      b.endOffsetExclusive > a.endOffsetExclusive || (b.endOffsetExclusive === a.endOffsetExclusive && b.kind === 'segment' && a.kind === 'gap') ? b : a,
    );
    chain.push(best);
    at = best.endOffsetExclusive;
  }
  const inChain = new Set(chain);
  const superseded = valid.filter((i) => !inChain.has(i) && i.firstOffset >= startOffset && i.endOffsetExclusive <= end);
  return { topic, partition, startOffset, endOffsetExclusive: end, items: chain, superseded };
}

function groupBy<T>(values: readonly T[], key: (value: T) => number): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const value of values) {
    const group = groups.get(key(value)) ?? [];
    group.push(value);
    groups.set(key(value), group);
  }
  return groups;
}

/** Reads one partition's directory and resolves its chain. */
export async function readPartitionChain(layout: StorageLayout, topic: string, partition: number): Promise<PartitionChain> {
  const dir = layout.masterPartitionDir(topic, partition);
  const items = (await listDir(dir))
    .map((name) => parseChainItem(dir, name))
    .filter((i): i is ChainItem => i !== undefined && i.topic === topic && i.partition === partition);
  return resolveChain(topic, partition, items);
}

/** The partitions that have a master directory (`p<N>`), sorted. */
export async function archivedPartitions(layout: StorageLayout, topic: string): Promise<number[]> {
  return (await listDir(layout.masterDir(topic)))
    .map((name) => /^p(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** Every partition's chain, by partition. */
export async function readMasterChains(layout: StorageLayout, topic: string): Promise<Map<number, PartitionChain>> {
  const partitions = await archivedPartitions(layout, topic);
  const chains = await Promise.all(partitions.map((p) => readPartitionChain(layout, topic, p)));
  return new Map(chains.map((c) => [c.partition, c]));
}

/**
 * The rejected-records files that belong to the chain: a segment's rejected records are in the
 * file of the same name under `rejected/`, written before the segment itself, so a rejected file
 * without its segment in the chain is a leftover and must not be read.
 */
export async function rejectedFilesOf(layout: StorageLayout, chain: PartitionChain): Promise<Map<ChainItem, string>> {
  const dir = layout.rejectedPartitionDir(chain.topic, chain.partition);
  const present = new Set(await listDir(dir));
  const files = new Map<ChainItem, string>();
  for (const item of chain.items) {
    if (item.kind !== 'segment') continue;
    const name = StorageLayout.segmentFileName(item);
    if (present.has(name)) files.set(item, join(dir, name));
  }
  return files;
}
