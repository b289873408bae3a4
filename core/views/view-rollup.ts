import { formatExactDurationMs } from '../config/duration.ts';
import { quoteIdent, quoteLiteral } from '../sql/identifiers.ts';
import type { BoundView } from './bind-views.ts';
import { WINDOW_END, WINDOW_START } from './view-definition.ts';
import { batchTable, realtimeTable } from './view-tables.ts';

/**
 * Rollups: a view re-aggregated exactly over a subset of its dimensions, into longer tumbling or
 * sliding windows, from its mergeable state rather than from its finalized rows (an average of
 * averages, a sum of distinct counts). Per view, in the serving database:
 *
 *   state__<view>   batch__<view> ⊎ realtime__<view>: the key and state columns, any number of
 *                   rows per key. It reads the same tables, in the same transaction, as <view>.
 *   rollup_<view>(dimensions, length, slide, since, until)
 *                   a table macro: the state grouped by window and the dimensions kept, each
 *                   measure merged and finalized by the view's own compiled rule.
 *
 * Windows are aligned to the epoch, as the view's buckets are: a window [start, start + length)
 * starts at a multiple of `slide` (tumbling when slide = length) and holds the buckets that lie
 * wholly inside it, so length and slide must be whole numbers of the view's window. A window is
 * present when any of its buckets has state, so at the edges of the data (and at the bucket still
 * filling) a sliding window covers only part of its length. `since`/`until` keep the windows with
 * since <= window_start < until and read only the buckets those windows hold. `length := 'all'`
 * is one window over all the buckets in since..until (the rollup over time as a whole).
 *
 * Exactness: the state and the merge and finalize rules are the view's own, read in the query's
 * one transaction, so a rollup is exactly as exact as the view and sees the same snapshot.
 */

/** Internal column names; `_` starts no field name, so they never clash with a dimension. */
const ALL = '__rollup_all';
const START = '__rollup_start';
const BUCKET = '__rollup_bucket';

export function stateView(view: string): string {
  return `state__${view}`;
}

export function rollupMacro(view: string): string {
  return `rollup_${view}`;
}

export const ROLLUP_MACROS: readonly string[] = [
  // Milliseconds of a fixed-length interval (or of text such as '5 minutes'); NULL for anything
  // else, and for intervals with months or years, whose length depends on the date.
  `CREATE OR REPLACE MACRO lambda_interval_ms(value) AS
     CASE WHEN datepart('year', TRY_CAST(value AS INTERVAL)) <> 0 OR datepart('month', TRY_CAST(value AS INTERVAL)) <> 0 THEN NULL
          ELSE epoch_ms(TIMESTAMP '1970-01-01 00:00:00' + TRY_CAST(value AS INTERVAL)) END`,
  // The starts of the windows [s, s + length_ms) holding bucket [bucket, bucket + bucket_ms):
  // multiples of slide_ms from the newest one at or before the bucket (`newest`), back to the
  // oldest one that still reaches the bucket's end (all three lengths are multiples of bucket_ms).
  // Defined before lambda_window_starts, which calls it.
  `CREATE OR REPLACE MACRO lambda_window_starts_to(newest, bucket, bucket_ms, length_ms, slide_ms) AS
     generate_series(
       newest - to_milliseconds(((epoch_ms(newest) - epoch_ms(bucket) - bucket_ms + length_ms) // slide_ms) * slide_ms),
       newest,
       to_milliseconds(slide_ms))`,
  `CREATE OR REPLACE MACRO lambda_window_starts(bucket, bucket_ms, length_ms, slide_ms) AS
     lambda_window_starts_to(time_bucket(to_milliseconds(slide_ms), bucket, TIMESTAMP '1970-01-01 00:00:00'), bucket, bucket_ms, length_ms, slide_ms)`,
];

function listLiteral(values: readonly string[]): string {
  return `[${values.map(quoteLiteral).join(', ')}]::VARCHAR[]`;
}

/**
 * Both state tables as one relation, without the speed layer's block keys. It names no column,
 * and neither does the macro (but `s.window_start`): inside a macro a name equal to a parameter's
 * (a dimension `length`) is read as the parameter, and on DuckDB 1.5.6 a macro cannot even be
 * created over a view whose definition names such a column ("Conflicting column names").
 */
function stateRelationSql(view: string): string {
  return `SELECT * FROM ${quoteIdent(batchTable(view))} UNION ALL BY NAME SELECT * EXCLUDE (_partition, _block) FROM ${quoteIdent(realtimeTable(view))}`;
}

/** `state__<view>`: both state tables as one relation, without the speed layer's block keys. */
export function createStateViewSql(bound: BoundView): string {
  const name = bound.view.definition.name;
  return `CREATE OR REPLACE VIEW ${quoteIdent(stateView(name))} AS ${stateRelationSql(name)}`;
}

/** The rollup call that gives back the view itself (plus `window_end`), every parameter spelled out. */
export function rollupCallSql(bound: BoundView): string {
  const { name, windowMs, dimensions } = bound.view.definition;
  const dims = `dimensions := [${dimensions.map(quoteLiteral).join(', ')}]`;
  if (windowMs === null) return `${rollupMacro(name)}(${dims})`;
  const length = quoteLiteral(formatExactDurationMs(windowMs, { long: true }));
  return `${rollupMacro(name)}(${dims}, length := ${length}, slide := ${length}, since := NULL, until := NULL)`;
}

/** A CASE branch that raises `message` (SQL text) when `failed` holds. */
function failWhen(failed: string, message: string): string {
  return `WHEN ${failed} THEN error(${message})`;
}

/** The `rollup_<view>` table macro. */
export function createRollupMacroSql(bound: BoundView): string {
  const { view } = bound;
  const { name: viewName, windowMs, dimensions } = view.definition;
  const macro = rollupMacro(viewName);
  const all = listLiteral(dimensions);
  const prefix = `${macro}: `;
  const dimensionsOk = failWhen(
    `NOT list_has_all(${all}, coalesce(dimensions, ${all}))`,
    `${quoteLiteral(`${prefix}unknown dimension `)} || list_filter(dimensions, d -> NOT list_contains(${all}, d))::VARCHAR || ${quoteLiteral(
      dimensions.length > 0 ? `; ${viewName} has the dimensions ${dimensions.join(', ')}` : `; ${viewName} has no dimensions`,
    )}`,
  );
  // The kept dimensions. COLUMNS(…) must match some column, so the constant __rollup_all is
  // always kept (and dropped at the end): `[]` keeps no dimension.
  const kept = `COLUMNS(__column -> __column = '${ALL}' OR (list_contains(${all}, __column) AND list_contains(coalesce(dimensions, ${all}), __column)))`;
  const measures = view.mergedMeasures.join(',\n         ');
  const state = `(${stateRelationSql(viewName)})`;

  if (windowMs === null) {
    return `CREATE OR REPLACE MACRO ${quoteIdent(macro)}(dimensions := NULL) AS TABLE
WITH __rollup AS (SELECT CASE ${dimensionsOk} ELSE true END AS __ok)
SELECT * EXCLUDE (${ALL}) FROM (
  SELECT ${kept},
         ${measures}
  FROM (SELECT NULL AS ${ALL}, s.* FROM ${state} AS s, __rollup WHERE __ok)
  GROUP BY ALL)`;
  }

  return windowedRollupMacroSql(bound, windowMs, { dimensionsOk, kept, measures, state });
}

/**
 * The macro of a windowed view. `length := 'all'` makes one window per kept key over the buckets
 * with since <= window_start < until, reported as [since, until) (NULL: unbounded).
 */
function windowedRollupMacroSql(
  bound: BoundView,
  windowMs: number,
  parts: { readonly dimensionsOk: string; readonly kept: string; readonly measures: string; readonly state: string },
): string {
  const { view } = bound;
  const viewName = view.definition.name;
  const macro = rollupMacro(viewName);
  const window = formatExactDurationMs(windowMs);
  const wholeWindows = (param: string, orAll: string) =>
    `${quoteLiteral(`${macro}: ${param} must be a whole number of ${viewName}'s window (${window})${orAll}, such as '${formatExactDurationMs(5 * windowMs, { long: true })}'; got `)} || coalesce(CAST(${param} AS VARCHAR), 'NULL')`;
  const ws = `s.${quoteIdent(WINDOW_START)}`;
  const since = 'CAST(since AS TIMESTAMP)';
  const until = 'CAST(until AS TIMESTAMP)';
  // Each bucket's state is merged once per kept key before it is copied into every window that
  // holds it (length / slide of them), not once per view key.
  const premerged = view.stateColumns.map((c) => `${c.merge(quoteIdent(c.name))} AS ${quoteIdent(c.name)}`).join(',\n             ');
  return `CREATE OR REPLACE MACRO ${quoteIdent(macro)}(dimensions := NULL, length := NULL, slide := NULL, since := NULL, until := NULL) AS TABLE
WITH __lengths AS (
  SELECT coalesce(CAST(length AS VARCHAR) = 'all', false) AS __whole,
         CASE WHEN length IS NULL THEN ${windowMs} ELSE lambda_interval_ms(length) END AS __length_ms,
         CASE WHEN slide IS NOT NULL THEN lambda_interval_ms(slide) WHEN length IS NULL THEN ${windowMs} ELSE lambda_interval_ms(length) END AS __slide_ms
), __rollup AS (
  SELECT CASE
           ${parts.dimensionsOk}
           ${failWhen(`NOT __whole AND (__length_ms IS NULL OR __length_ms <= 0 OR __length_ms % ${windowMs} <> 0)`, wholeWindows('length', " or 'all'"))}
           ${failWhen(`__whole AND slide IS NOT NULL`, quoteLiteral(`${macro}: length 'all' makes one window over since..until; it takes no slide`))}
           ${failWhen(`NOT __whole AND (__slide_ms IS NULL OR __slide_ms <= 0 OR __slide_ms % ${windowMs} <> 0)`, wholeWindows('slide', ''))}
           ${failWhen('NOT __whole AND __slide_ms > __length_ms', `${quoteLiteral(`${macro}: slide must not be longer than length (windows would skip buckets); got slide `)} || CAST(slide AS VARCHAR) || ' and length ' || coalesce(CAST(length AS VARCHAR), '${window}')`)}
           ELSE true END AS __ok,
         __whole, coalesce(__length_ms, 0) AS __length_ms, __slide_ms
  FROM __lengths
)
SELECT * EXCLUDE (${ALL}) FROM (
  SELECT ${START} AS ${quoteIdent(WINDOW_START)},
         CASE WHEN __whole THEN ${until} ELSE ${START} + to_milliseconds(__length_ms) END AS ${quoteIdent(WINDOW_END)},
         ${parts.kept},
         ${parts.measures}
  FROM (
    SELECT unnest(CASE WHEN __whole THEN [${since}] ELSE lambda_window_starts(${BUCKET}, ${windowMs}, __length_ms, __slide_ms) END) AS ${START}, b.*
    FROM (
      SELECT ${ws} AS ${BUCKET}, __whole, __length_ms, __slide_ms, ${parts.kept},
             ${premerged}
      FROM (SELECT NULL AS ${ALL}, * FROM ${parts.state}) AS s, __rollup
      WHERE __ok
        AND (since IS NULL OR ${ws} >= ${since})
        AND (until IS NULL OR ${ws} < ${until} + to_milliseconds(__length_ms))
      GROUP BY ALL
    ) AS b
  )
  WHERE __whole OR ((since IS NULL OR ${START} >= ${since}) AND (until IS NULL OR ${START} < ${until}))
  GROUP BY ALL)`;
}
