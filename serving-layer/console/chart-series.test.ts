import { describe, expect, it } from 'vitest';
import { splitAtFilling, toChartData } from './chart-series.js';

const at = (minute: number) => new Date(Date.UTC(2026, 11, 5, 8, minute)).toISOString();
const row = (minute: number, series: string, value: number | null) => [at(minute), at(minute + 1), series, value];

describe('toChartData', () => {
  it('puts each value under its window and series, null where a series has no window, series in name order', () => {
    const data = toChartData([row(0, 'US', 1), row(0, 'DE', 2), row(1, 'DE', 3), row(2, 'US', null)], Date.parse(at(10)));
    expect(data.xsMs).toEqual([0, 1, 2].map((m) => Date.parse(at(m))));
    expect(data.endsMs).toEqual([1, 2, 3].map((m) => Date.parse(at(m))));
    expect(data.names).toEqual(['DE', 'US']);
    expect(data.values).toEqual({ DE: [2, 3, null], US: [1, null, null] });
    expect(data.fillingIndex).toBeNull();
  });

  it('marks the first window that ends after now as still filling, and reads bare DuckDB timestamps as UTC', () => {
    const bare = (minute: number) => at(minute).slice(0, 19).replace('T', ' ');
    const rows = [0, 1, 2].map((m) => [bare(m), bare(m + 1), 'all', m]);
    expect(toChartData(rows, Date.parse(at(2)) + 30_000).fillingIndex).toBe(2);
    expect(toChartData(rows, Date.parse(at(2)) - 1).fillingIndex).toBe(1); // minute 1 ends after now
    expect(toChartData(rows, Date.parse(at(3))).fillingIndex).toBeNull(); // an end equal to now is complete
    expect(toChartData([], Date.now())).toMatchObject({ xsMs: [], names: [], fillingIndex: null });
  });
});

describe('splitAtFilling', () => {
  it('draws complete windows solid and joins the filling ones to the last complete one', () => {
    expect(splitAtFilling([1, 2, 3, 4], 3)).toEqual({ complete: [1, 2, 3, null], filling: [null, null, 3, 4] });
    expect(splitAtFilling([1, 2], 0)).toEqual({ complete: [null, null], filling: [1, 2] });
    expect(splitAtFilling([1, 2], null)).toEqual({ complete: [1, 2], filling: [null, null] });
  });
});
