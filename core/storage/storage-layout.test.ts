import { describe, expect, it } from 'vitest';
import { StorageLayout } from './storage-layout.ts';

describe('StorageLayout', () => {
  it('names segments so that they sort by offset and parse back to their range', () => {
    const names = [
      { topic: 'clicks.v2', partition: 3, firstOffset: 10_000, endOffsetExclusive: 20_000 },
      { topic: 'clicks.v2', partition: 3, firstOffset: 0, endOffsetExclusive: 10_000 },
      { topic: 'clicks.v2', partition: 3, firstOffset: 9_007_199_254_740_000, endOffsetExclusive: 9_007_199_254_740_991 },
    ].map(StorageLayout.segmentFileName);
    expect([...names].sort()).toEqual([names[1], names[0], names[2]]);
    expect(StorageLayout.parseSegmentFileName(names[0]!)).toEqual({ topic: 'clicks.v2', partition: 3, firstOffset: 10_000, endOffsetExclusive: 20_000 });
    expect(StorageLayout.parseSegmentFileName(names[2]!)?.endOffsetExclusive).toBe(9_007_199_254_740_991);
  });

  it('ignores files that are not segments, such as temp files', () => {
    expect(StorageLayout.parseSegmentFileName('clicks-p0-00000000000000000000-00000000000000000010.parquet.tmp')).toBeUndefined();
    expect(StorageLayout.parseSegmentFileName('manifest.json')).toBeUndefined();
  });

  it('keeps batch versions apart, zero-padded so they sort', () => {
    const layout = new StorageLayout('/data');
    expect(layout.batchViewPath(42, 'page_traffic')).toBe('/data/batch/v00000042/page_traffic.parquet');
    expect(layout.manifestPath(7)).toBe('/data/batch/v00000007/manifest.json');
    expect(layout.masterGlob('clicks')).toBe('/data/master/clicks/p*/*.parquet');
  });
});
