import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventTimeGroups, NEWEST_GROUP_FILES, type EventTimeRange } from './event-time-groups.ts';

const range = (minMicros: bigint, maxMicros: bigint): EventTimeRange => ({ minMicros, maxMicros, minSql: `min ${minMicros}`, maxSql: `max ${maxMicros}` });

const files = fc.array(
  fc.option(fc.tuple(fc.bigInt({ min: -(10n ** 12n), max: 10n ** 12n }), fc.bigInt({ min: 0n, max: 10n ** 9n })), { freq: 8 }),
  { maxLength: 300 },
).map((ranges) => ranges.map((r, i) => ({ path: `f${i}`, range: r === null ? undefined : range(r[0], r[0] + r[1]) })));

describe('eventTimeGroups', () => {
  it('puts each file in exactly one group, whose stated range holds the file’s range', () => {
    fc.assert(
      fc.property(files, (input) => {
        const groups = eventTimeGroups(input);
        expect(groups.flatMap((g) => g.paths).sort()).toEqual(input.map((f) => f.path).sort());
        const byPath = new Map(input.map((f) => [f.path, f.range]));
        for (const group of groups) {
          for (const path of group.paths) {
            const own = byPath.get(path);
            if (group.range === undefined) expect(own).toBeUndefined();
            else {
              expect(own).toBeDefined();
              expect(group.range.minMicros <= own!.minMicros && own!.maxMicros <= group.range.maxMicros).toBe(true);
            }
          }
          if (group.range) {
            // The stated bounds are a member's own, text included (the SQL literal).
            const members = group.paths.map((p) => byPath.get(p)!);
            expect(members.some((m) => m.minMicros === group.range!.minMicros && m.minSql === group.range!.minSql)).toBe(true);
            expect(members.some((m) => m.maxMicros === group.range!.maxMicros && m.maxSql === group.range!.maxSql)).toBe(true);
          }
        }
      }),
    );
  });

  it('cuts the newest files finest: groups of 4, 8, 16… by latest event time, so a few cover any history', () => {
    fc.assert(
      fc.property(files, (input) => {
        const bounded = eventTimeGroups(input).filter((g) => g.range !== undefined);
        bounded.forEach((g, i) => {
          if (i < bounded.length - 1) expect(g.paths.length).toBe(NEWEST_GROUP_FILES * 2 ** i);
          else expect(g.paths.length).toBeLessThanOrEqual(NEWEST_GROUP_FILES * 2 ** i);
        });
        // Every file of a group ends no earlier than every file of the next (older) group.
        for (let i = 1; i < bounded.length; i++) {
          const oldestEndOfNewer = input.filter((f) => bounded[i - 1]!.paths.includes(f.path)).reduce((m, f) => (f.range!.maxMicros < m ? f.range!.maxMicros : m), bounded[i - 1]!.range!.maxMicros);
          expect(bounded[i]!.range!.maxMicros <= oldestEndOfNewer).toBe(true);
        }
      }),
    );
  });

  it('reads files of unknown range together, with no bound', () => {
    const groups = eventTimeGroups([{ path: 'a', range: undefined }, { path: 'b', range: range(1n, 2n) }, { path: 'c', range: undefined }]);
    expect(groups).toEqual([{ paths: ['b'], range: range(1n, 2n) }, { paths: ['a', 'c'], range: undefined }]);
  });
});
