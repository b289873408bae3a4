// SQL text the console writes itself. Every name comes from /v1/views and is quoted when needed.

export function ident(name) {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${String(name).replaceAll('"', '""')}"`;
}

export function literal(text) {
  return `'${String(text).replaceAll("'", "''")}'`;
}

/** A TIMESTAMP literal in UTC, the time zone of `window_start`. */
export function timestampLiteral(ms) {
  return `TIMESTAMP '${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}'`;
}

/** `rollup_<view>(dimensions := [...], ...)`: the view re-aggregated exactly, each measure by its own rule. */
function rollupCall(view, dimensions, extra = '') {
  return `${ident(view.rollup)}(dimensions := [${dimensions.map(literal).join(', ')}]${extra})`;
}

/**
 * The chart's query: per window of the view and value of `dimension` (one total series when it is
 * empty), the measure from the view's rollup, so an average split by country is the average of
 * each country's events, never a sum or mean of finalized averages. The `topN` series kept are
 * those with the largest value over the whole period (the same rollup with length 'all').
 * Columns: window_start, window_end, series, value, series_count.
 */
export function chartSql({ view, measure, dimension, sinceMs, topN }) {
  const dimensions = dimension ? [dimension] : [];
  const since = `, since := ${timestampLiteral(sinceMs)}`;
  const series = dimension ? `coalesce(CAST(${ident(dimension)} AS VARCHAR), 'NULL')` : literal(measure);
  return [
    `WITH points AS (SELECT window_start, window_end, ${series} AS series, ${ident(measure)} AS value`,
    `  FROM ${rollupCall(view, dimensions, since)}),`,
    `period AS (SELECT ${series} AS series, ${ident(measure)} AS value FROM ${rollupCall(view, dimensions, `, length := 'all'${since}`)}),`,
    `top AS (SELECT series FROM period ORDER BY value DESC NULLS LAST, series LIMIT ${topN})`,
    'SELECT window_start, window_end, series, value, (SELECT count(*) FROM period) AS series_count',
    'FROM points WHERE series IN (SELECT series FROM top) ORDER BY window_start, series',
  ].join('\n');
}

/** `15 minutes`, `2 hours`: a length as DuckDB reads an INTERVAL and as a reader says it. */
function intervalText(ms) {
  for (const [unit, size] of [['hour', 3_600_000], ['minute', 60_000], ['second', 1_000]]) {
    if (ms % size === 0) return `${ms / size} ${unit}${ms === size ? '' : 's'}`;
  }
  return `${ms} milliseconds`;
}

export function exampleQueries(views) {
  const examples = [];
  for (const view of views) {
    const name = ident(view.name);
    const order = view.window ? ' ORDER BY window_start DESC' : '';
    examples.push([`Latest rows of ${view.name}`, `SELECT * FROM ${name}${order} LIMIT 20`]);
    const [dimension] = view.dimensions;
    const [measure] = view.measures;
    if (dimension && measure) {
      const m = ident(measure.name);
      const length = view.window ? ", length := 'all'" : '';
      examples.push([`${measure.name} by ${dimension} in ${view.name}, exact`,
        `SELECT ${ident(dimension)}, ${m}\nFROM ${rollupCall(view, [dimension], length)}\nORDER BY 2 DESC\nLIMIT 10`]);
    }
    if (view.windowMs && measure) {
      const length = literal(intervalText(15 * view.windowMs));
      const slide = literal(intervalText(5 * view.windowMs));
      examples.push([`${measure.name} of ${view.name} over sliding ${intervalText(15 * view.windowMs)}`,
        `SELECT window_start, window_end, ${ident(measure.name)}\nFROM ${rollupCall(view, [], `, length := ${length}, slide := ${slide}`)}\nORDER BY window_start DESC\nLIMIT 12`]);
    }
  }
  examples.push(['Raw events (any 20)', 'SELECT * FROM events LIMIT 20']);
  examples.push(['Alert history', 'SELECT * FROM alert_history ORDER BY recorded_at DESC LIMIT 50']);
  return examples;
}
