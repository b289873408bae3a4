/**
 * Offset blocks (DESIGN.md, "Exact handoff"): the speed layer keeps its partial state per block
 * of `blockSize` consecutive offsets of a partition, and a batch cut is rounded down to a block
 * boundary, so a published cut drops whole blocks and no realtime row straddles it. Pure.
 */

/** The block holding `offset`: offsets [block × blockSize, (block + 1) × blockSize). */
export function offsetBlock(offset: number, blockSize: number): number {
  return Math.floor(offset / blockSize);
}

/** SQL for the block of the BIGINT offset expression `offsetSql`, as `offsetBlock` computes it. */
export function offsetBlockSql(offsetSql: string, blockSize: number): string {
  return `(${offsetSql} // ${blockSize})`;
}

/** `offsetExclusive` rounded down to a block boundary: the largest multiple of blockSize not above it. */
export function blockBoundaryAtOrBelow(offsetExclusive: number, blockSize: number): number {
  return offsetBlock(offsetExclusive, blockSize) * blockSize;
}
