import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gapFileName, parseChainItem, parseGapFileName, resolveChain, type ChainItem } from './segment-chain.ts';

const seg = (first: number, end: number, kind: ChainItem['kind'] = 'segment'): ChainItem => ({
  topic: 't',
  partition: 0,
  firstOffset: first,
  endOffsetExclusive: end,
  kind,
  path: `/m/${kind}-${first}-${end}`,
});
const ranges = (items: readonly ChainItem[]) => items.map((i) => [i.firstOffset, i.endOffsetExclusive, i.kind]);

describe('resolveChain', () => {
  it('follows consecutive segments and gap markers from the lowest offset', () => {
    const chain = resolveChain('t', 0, [seg(100, 250), seg(0, 100), seg(250, 400, 'gap'), seg(400, 450)]);
    expect(ranges(chain.items)).toEqual([
      [0, 100, 'segment'],
      [100, 250, 'segment'],
      [250, 400, 'gap'],
      [400, 450, 'segment'],
    ]);
    expect(chain.endOffsetExclusive).toBe(450);
    expect(chain.superseded).toEqual([]);
  });

  it('prefers a merged segment over its parts, which become superseded', () => {
    const chain = resolveChain('t', 0, [seg(0, 100), seg(100, 250), seg(0, 250), seg(250, 300)]);
    expect(ranges(chain.items)).toEqual([
      [0, 250, 'segment'],
      [250, 300, 'segment'],
    ]);
    expect(ranges(chain.superseded)).toEqual([
      [0, 100, 'segment'],
      [100, 250, 'segment'],
    ]);
  });

  it('stops at a hole and ignores overlapping leftovers beyond the end', () => {
    const chain = resolveChain('t', 0, [seg(0, 100), seg(100, 250), seg(180, 300), seg(400, 500)]);
    expect(chain.endOffsetExclusive).toBe(250);
    expect(chain.superseded).toEqual([]);
  });

  it('is empty for a partition with no files', () => {
    expect(resolveChain('t', 3, [])).toMatchObject({ startOffset: 0, endOffsetExclusive: 0, items: [] });
  });

  it('tiles its range exactly once, whatever files a crash or a second writer left', () => {
    // Any set of files written by writers that each start at an end they observed.
    const files = fc.array(fc.tuple(fc.nat(50), fc.integer({ min: 1, max: 40 })), { maxLength: 30 }).map((spans) => {
      const items: ChainItem[] = [seg(0, 10)];
      for (const [pick, length] of spans) {
        const ends = items.map((i) => i.endOffsetExclusive);
        const start = ends[pick % ends.length]!;
        items.push(seg(start, start + length, length % 7 === 0 ? 'gap' : 'segment'));
      }
      return items;
    });
    fc.assert(
      fc.property(files, (items) => {
        const chain = resolveChain('t', 0, items);
        let at = chain.startOffset;
        for (const item of chain.items) {
          expect(item.firstOffset).toBe(at);
          at = item.endOffsetExclusive;
        }
        expect(at).toBe(chain.endOffsetExclusive);
        // The chain is a function of the set of files, not of their order.
        expect(resolveChain('t', 0, [...items].reverse()).items).toEqual(chain.items);
      }),
    );
  });

  it('reaches past a longer first file when shorter ones lead further (not greedy)', () => {
    const chain = resolveChain('t', 0, [seg(10, 30), seg(10, 15), seg(15, 50)]);
    expect(ranges(chain.items)).toEqual([
      [10, 15, 'segment'],
      [15, 50, 'segment'],
    ]);
    expect(chain.endOffsetExclusive).toBe(50);
    expect(ranges(chain.superseded)).toEqual([[10, 30, 'segment']]);
  });

  it('reaches the furthest end of any sequence of consecutive files, with the fewest files (brute force over random sets)', () => {
    const files = fc.uniqueArray(
      fc.tuple(fc.nat(20), fc.integer({ min: 1, max: 8 }), fc.boolean()).map(([first, length, gap]) => seg(first, first + length, gap ? 'gap' : 'segment')),
      { maxLength: 14, selector: (i) => `${i.firstOffset}-${i.endOffsetExclusive}-${i.kind}` },
    );
    fc.assert(
      fc.property(files, (items) => {
        // Every sequence of consecutive files from the lowest first offset, enumerated.
        const start = items.length === 0 ? 0 : Math.min(...items.map((i) => i.firstOffset));
        let best = { end: start, files: 0 };
        const walk = (at: number, count: number): void => {
          if (at > best.end || (at === best.end && count < best.files)) best = { end: at, files: count };
          for (const next of items) if (next.firstOffset === at) walk(next.endOffsetExclusive, count + 1);
        };
        walk(start, 0);
        const chain = resolveChain('t', 0, items);
        expect(chain.endOffsetExclusive).toBe(best.end);
        expect(chain.items.length).toBe(best.files);
        let at = start;
        for (const item of chain.items) {
          expect(item.firstOffset).toBe(at);
          at = item.endOffsetExclusive;
        }
        expect(at).toBe(best.end);
        expect(resolveChain('t', 0, [...items].reverse()).items).toEqual(chain.items);
      }),
      { seed: 19, numRuns: 500 },
    );
  });
});

describe('gap marker names', () => {
  it('parse back to their range and are told apart from segments', () => {
    const name = gapFileName({ topic: 'clicks-v2', partition: 2, firstOffset: 10, endOffsetExclusive: 5_000 });
    expect(parseGapFileName(name)).toEqual({ topic: 'clicks-v2', partition: 2, firstOffset: 10, endOffsetExclusive: 5_000 });
    expect(parseChainItem('/d', name)?.kind).toBe('gap');
    expect(parseChainItem('/d', name.replace(/\.gap$/, '.parquet'))?.kind).toBe('segment');
    expect(parseChainItem('/d', `.${name}.tmp-12-abcdef01`)).toBeUndefined();
  });
});
