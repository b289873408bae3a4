// The chart's rows turned into uPlot's columns, with the window still filling kept apart.

/**
 * Rows of [window_start, window_end, series, value] (ordered by window_start) to columns: `xsMs`
 * the window starts, `values[name]` one value or null per window, and `fillingIndex`, the first
 * window whose end is after `nowMs`. That window and any later one are still filling: their
 * values are partial, so the chart draws them apart instead of as a fall to the newest value.
 */
export function toChartData(rows, nowMs) {
  const endsMs = new Map();
  for (const [start, end] of rows) endsMs.set(parseUtcMs(start), parseUtcMs(end));
  const xsMs = [...endsMs.keys()].sort((a, b) => a - b);
  const index = new Map(xsMs.map((x, i) => [x, i]));
  const names = [...new Set(rows.map((r) => String(r[2])))].sort((a, b) => a.localeCompare(b));
  const values = Object.fromEntries(names.map((name) => [name, new Array(xsMs.length).fill(null)]));
  for (const [start, , series, value] of rows) values[String(series)][index.get(parseUtcMs(start))] = value === null ? null : Number(value);
  const filling = xsMs.findIndex((x) => endsMs.get(x) > nowMs);
  return { xsMs, endsMs: xsMs.map((x) => endsMs.get(x)), names, values, fillingIndex: filling < 0 ? null : filling };
}

/**
 * A series split in two for drawing: `complete` up to the last complete window, `filling` from
 * that window on (so the dashed part joins the solid line), both null elsewhere.
 */
export function splitAtFilling(ys, fillingIndex) {
  if (fillingIndex === null) return { complete: ys, filling: ys.map(() => null) };
  return {
    complete: ys.map((y, i) => (i < fillingIndex ? y : null)),
    filling: ys.map((y, i) => (i >= fillingIndex - 1 ? y : null)),
  };
}

/** DuckDB TIMESTAMPs are UTC; the API writes them with `Z`, but a bare one is read as UTC too. */
export function parseUtcMs(text) {
  const s = String(text);
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s.replace(' ', 'T')}Z`);
}
