import { readPartitionChain } from '../core/storage/segment-chain.ts';
import type { StorageLayout } from '../core/storage/storage-layout.ts';

/** What the files say about one partition's archive. */
export interface ArchivePosition {
  readonly partition: number;
  /** The next offset to archive: every offset below it (from the chain's start) is in a file. */
  readonly endOffsetExclusive: number;
  /** Offset ranges the source had deleted before they were archived. */
  readonly gaps: readonly { readonly fromOffset: number; readonly toOffsetExclusive: number }[];
}

/**
 * The archiver's resume position, derived from the files alone (DESIGN.md, "Storage"): no
 * offset is committed anywhere else, so whatever a crash interrupted (a buffer not yet written,
 * a temp file not yet renamed) is simply read again, and what was renamed is never re-read.
 */
export async function readArchivePosition(layout: StorageLayout, topic: string, partition: number): Promise<ArchivePosition> {
  const chain = await readPartitionChain(layout, topic, partition);
  return {
    partition,
    endOffsetExclusive: chain.endOffsetExclusive,
    gaps: chain.items.filter((i) => i.kind === 'gap').map((g) => ({ fromOffset: g.firstOffset, toOffsetExclusive: g.endOffsetExclusive })),
  };
}
