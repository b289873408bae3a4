import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isTempFileName } from '../core/storage/durable-files.ts';
import { isNotFound, listDir } from '../core/storage/list-dir.ts';
import { readPartitionChain, rejectedFilesOf, type ChainItem, type PartitionChain } from '../core/storage/segment-chain.ts';
import { StorageLayout } from '../core/storage/storage-layout.ts';
import { quoteLiteral } from '../core/sql/identifiers.ts';
import type { Logger } from '../core/observability/logger.ts';
import type { SegmentWriter } from './segment-writer.ts';

export interface CompactionOptions {
  /** A segment spanning fewer offsets than this is small and worth merging (default 50,000). */
  readonly smallSegmentOffsets?: number;
  /** A merged segment spans at most this many offsets (default 1,000,000). */
  readonly maxMergedOffsets?: number;
  /**
   * How long a file stays after nothing needs it any more (merged away, orphaned by a crash),
   * so that a batch run that listed it can still read it (default 10 minutes).
   */
  readonly graceMs?: number;
}

export interface CompactionResult {
  readonly merged: number;
  readonly deleted: number;
}

/**
 * Merges runs of small consecutive segments of a partition into one segment spanning the same
 * offsets, then, after a grace period, deletes what the merge superseded. The merged file starts
 * where the run starts and reaches further than any of its parts, so the chain (segment-chain.ts)
 * switches to it atomically at its rename; until the parts are deleted, readers that use the
 * chain ignore them. Rejected records are merged first, for the same reason as in SegmentWriter.
 */
export class SegmentCompactor {
  private readonly smallSegmentOffsets: number;
  private readonly maxMergedOffsets: number;
  private readonly graceMs: number;
  private readonly staleTempMs: number;

  constructor(
    private readonly writer: SegmentWriter,
    private readonly layout: StorageLayout,
    private readonly logger: Logger,
    options: CompactionOptions = {},
  ) {
    this.smallSegmentOffsets = options.smallSegmentOffsets ?? 50_000;
    this.maxMergedOffsets = options.maxMergedOffsets ?? 1_000_000;
    this.graceMs = options.graceMs ?? 600_000;
    // A temp file may belong to a write in progress (here or in another archiver): only one
    // far older than any write is a crash's leftover.
    this.staleTempMs = Math.max(this.graceMs, 3_600_000);
  }

  /**
   * One pass over a partition. The caller must not write the partition meanwhile (the archiver
   * queues it behind the partition's segment writes): a segment between its rejected file's rename
   * and its own would look like an orphan.
   */
  async compactPartition(partition: number): Promise<CompactionResult> {
    const topic = this.writer.topic;
    const chain = await readPartitionChain(this.layout, topic, partition);
    let merged = 0;
    for (const run of this.smallRuns(chain)) {
      await this.merge(chain, run);
      merged++;
    }
    const deleted = await this.deleteUnneeded(partition);
    return { merged, deleted };
  }

  /** Runs of at least two consecutive small segments (gap markers break a run). */
  smallRuns(chain: PartitionChain): ChainItem[][] {
    const runs: ChainItem[][] = [];
    let run: ChainItem[] = [];
    const close = (): void => {
      if (run.length >= 2) runs.push(run);
      run = [];
    };
    for (const item of chain.items) {
      const span = item.endOffsetExclusive - item.firstOffset;
      if (item.kind !== 'segment' || span >= this.smallSegmentOffsets) {
        close();
        continue;
      }
      if (run.length > 0 && item.endOffsetExclusive - run[0]!.firstOffset > this.maxMergedOffsets) close();
      run.push(item);
    }
    close();
    return runs;
  }

  private async merge(chain: PartitionChain, run: ChainItem[]): Promise<void> {
    const first = run[0]!;
    const last = run[run.length - 1]!;
    const fileName = StorageLayout.segmentFileName({ ...first, endOffsetExclusive: last.endOffsetExclusive });
    const rejected = await rejectedFilesOf(this.layout, chain);
    const rejectedParts = run.map((s) => rejected.get(s)).filter((f): f is string => f !== undefined);
    const list = (files: string[]) => `read_parquet([${files.map(quoteLiteral).join(', ')}], union_by_name = true)`;
    await this.writer.withConnection(async (connection) => {
      if (rejectedParts.length > 0) {
        const target = join(this.layout.rejectedPartitionDir(chain.topic, chain.partition), fileName);
        await this.writer.copyDurably(connection, `SELECT * FROM ${list(rejectedParts)} ORDER BY _offset`, target, chain.partition);
      }
      const target = join(this.layout.masterPartitionDir(chain.topic, chain.partition), fileName);
      await this.writer.copyDurably(connection, `SELECT * FROM ${list(run.map((s) => s.path))} ORDER BY _offset`, target, chain.partition);
    });
    this.logger.debug({ partition: chain.partition, fromOffset: first.firstOffset, toOffsetExclusive: last.endOffsetExclusive, parts: run.length }, 'compacted segments');
  }

  /**
   * Deletes, once the grace period has passed: files the chain superseded (with their rejected
   * records), rejected files whose segment never made it into the chain, and temp files left by
   * a crash.
   */
  private async deleteUnneeded(partition: number): Promise<number> {
    const topic = this.writer.topic;
    const chain = await readPartitionChain(this.layout, topic, partition);
    const cutoffMs = Date.now() - this.graceMs;
    const staleTempCutoffMs = Date.now() - this.staleTempMs;
    const doomed: string[] = [];
    const rejectedDir = this.layout.rejectedPartitionDir(topic, partition);
    for (const old of chain.superseded) {
      const cover = chain.items.find((i) => i.firstOffset <= old.firstOffset && i.endOffsetExclusive >= old.endOffsetExclusive);
      if (cover && (await mtimeMs(cover.path)) < cutoffMs) {
        doomed.push(old.path);
        if (old.kind === 'segment') doomed.push(join(rejectedDir, StorageLayout.segmentFileName(old)));
      }
    }
    const masterDir = this.layout.masterPartitionDir(topic, partition);
    const masterNames = new Set(await listDir(masterDir));
    for (const name of await listDir(rejectedDir)) {
      const orphan = StorageLayout.parseSegmentFileName(name) !== undefined && !masterNames.has(name);
      const limit = orphan ? cutoffMs : isTempFileName(name) ? staleTempCutoffMs : -Infinity;
      if ((await mtimeMs(join(rejectedDir, name))) < limit) doomed.push(join(rejectedDir, name));
    }
    for (const name of masterNames) {
      if (isTempFileName(name) && (await mtimeMs(join(masterDir, name))) < staleTempCutoffMs) doomed.push(join(masterDir, name));
    }
    await Promise.all(doomed.map((path) => rm(path, { force: true })));
    return doomed.length;
  }
}

/** A file removed meanwhile (by another archiver's pass) counts as new: nothing to delete. */
async function mtimeMs(path: string): Promise<number> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (error) {
    if (isNotFound(error)) return Number.POSITIVE_INFINITY;
    throw error;
  }
}
