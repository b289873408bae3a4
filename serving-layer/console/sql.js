// SQL text the console writes itself. Every name comes from /v1/views and is quoted when needed.

export function ident(name) {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${String(name).replaceAll('"', '""')}"`;
}

/** A TIMESTAMP literal in UTC, the time zone of `window_start`. */
export function timestampLiteral(ms) {
  return `TIMESTAMP '${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}'`;
}

/**
 * How a measure's values are combined across the dimensions the chart does not split by:
 * counts and sums add up, min/max stay min/max, averages become the mean of averages
 * (labelled as such), distinct counts cannot be added so the largest is shown.
 */
export function rollupOf(kind) {
  return { min: 'min', max: 'max', avg: 'avg', approx_count_distinct: 'max' }[kind] ?? 'sum';
}

/**
 * The chart's query: per window and value of `dimension` (or one total series when it is
 * empty), the measure rolled up, keeping only the `topN` series with the largest totals.
 */
export function chartSql({ view, measure, kind, dimension, sinceMs, topN }) {
  const series = dimension ? `coalesce(CAST(${ident(dimension)} AS VARCHAR), 'NULL')` : `'${measure.replaceAll("'", "''")}'`;
  return [
    'WITH points AS (',
    `  SELECT window_start, ${series} AS series, ${rollupOf(kind)}(${ident(measure)}) AS value`,
    `  FROM ${ident(view)} WHERE window_start >= ${timestampLiteral(sinceMs)} GROUP BY ALL),`,
    `top AS (SELECT series FROM points GROUP BY series ORDER BY sum(value) DESC NULLS LAST LIMIT ${topN})`,
    'SELECT window_start, series, value FROM points WHERE series IN (SELECT series FROM top) ORDER BY 1, 2',
  ].join('\n');
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
      examples.push([`${measure.name} by ${dimension} in ${view.name}`,
        `SELECT ${ident(dimension)}, ${rollupOf(measure.kind)}(${m}) AS ${m}\nFROM ${name}\nGROUP BY ALL\nORDER BY 2 DESC\nLIMIT 10`]);
    }
  }
  examples.push(['Raw events (any 20)', 'SELECT * FROM events LIMIT 20']);
  examples.push(['Alert history', 'SELECT * FROM alert_history ORDER BY "at" DESC LIMIT 50']);
  return examples;
}
