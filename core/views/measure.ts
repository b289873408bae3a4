/**
 * A measure as declared in a view (`revenue: sum(amount)`), split into its aggregate and the SQL
 * expression it aggregates. Only aggregates whose partial states merge exactly are accepted.
 */
export type AggregateKind = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'approx_count_distinct';

export interface Measure {
  readonly name: string;
  readonly kind: AggregateKind;
  /** The aggregated SQL expression, verbatim; `*` for count(*). */
  readonly argumentSql: string;
  /** The measure as written in the config. */
  readonly expression: string;
}

export type MeasureParse = { ok: true; measure: Measure } | { ok: false; message: string };

const MERGEABLE: readonly AggregateKind[] = ['count', 'sum', 'min', 'max', 'avg', 'approx_count_distinct'];
const SUPPORTED = MERGEABLE.join(', ');

/** Aggregates users reach for that have no exact mergeable state, with what to use instead. */
const NOT_MERGEABLE: Readonly<Record<string, string>> = {
  median: 'keep max() or avg() in the view, or compute exact percentiles over `events` with SQL',
  quantile: 'keep max() or avg() in the view, or compute exact percentiles over `events` with SQL',
  quantile_cont: 'keep max() or avg() in the view, or compute exact percentiles over `events` with SQL',
  quantile_disc: 'keep max() or avg() in the view, or compute exact percentiles over `events` with SQL',
  percentile_cont: 'keep max() or avg() in the view, or compute exact percentiles over `events` with SQL',
  percentile_disc: 'keep max() or avg() in the view, or compute exact percentiles over `events` with SQL',
  approx_quantile: 'keep max() or avg() in the view, or compute percentiles over `events` with SQL',
  mode: 'query `events` with SQL for the most frequent value',
  stddev: 'declare avg(x) and avg(x * x) as two measures and derive the deviation in the query',
  stddev_pop: 'declare avg(x) and avg(x * x) as two measures and derive the deviation in the query',
  stddev_samp: 'declare avg(x) and avg(x * x) as two measures and derive the deviation in the query',
  variance: 'declare avg(x) and avg(x * x) as two measures and derive the variance in the query',
  var_pop: 'declare avg(x) and avg(x * x) as two measures and derive the variance in the query',
  var_samp: 'declare avg(x) and avg(x * x) as two measures and derive the variance in the query',
  string_agg: 'query `events` with SQL for lists of values',
  list: 'query `events` with SQL for lists of values',
  array_agg: 'query `events` with SQL for lists of values',
  first: 'use min() or max() of the value',
  last: 'use min() or max() of the value',
  any_value: 'use min() or max() of the value',
  arg_min: 'use min() of the value',
  arg_max: 'use max() of the value',
};

/**
 * Splits `fn(arg)` into its name and argument when the outer parentheses enclose the whole rest,
 * skipping over quoted strings and identifiers. Returns undefined for anything else
 * (`sum(a) / sum(b)`, `sum(a) FILTER (...)`, a bare column).
 */
export function splitCall(expression: string): { fn: string; argument: string } | undefined {
  const match = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(/.exec(expression);
  if (!match) return undefined;
  const open = match[0].length - 1;
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < expression.length; i++) {
    const ch = expression[i];
    if (quote) {
      if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === "'" || ch === '"') quote = ch;
    else if (ch === '(') depth++;
    else if (ch === ')' && --depth === 0) {
      if (expression.slice(i + 1).trim() !== '') return undefined;
      return { fn: match[1]!.toLowerCase(), argument: expression.slice(open + 1, i).trim() };
    }
  }
  return undefined;
}

/** Parses one measure; the message on failure says what to write instead. */
export function parseMeasure(name: string, expression: string): MeasureParse {
  const call = splitCall(expression);
  if (!call) {
    return {
      ok: false,
      message: `"${expression}" must be a single aggregate call such as sum(amount); supported: ${SUPPORTED}. Combine measures (e.g. a ratio) in the query instead`,
    };
  }
  const { fn, argument } = call;
  const advice = NOT_MERGEABLE[fn];
  if (advice) return { ok: false, message: `${fn}() cannot be merged exactly across batch and realtime; ${advice}` };
  if (!(MERGEABLE as readonly string[]).includes(fn)) {
    return { ok: false, message: `${fn}() is not a supported aggregate; supported: ${SUPPORTED}` };
  }
  if (/^distinct\b/i.test(argument)) {
    return { ok: false, message: `${fn}(DISTINCT …) cannot be merged exactly; use approx_count_distinct(${argument.replace(/^distinct\s+/i, '')})` };
  }
  if (argument === '') return { ok: false, message: `${fn}() needs an argument, e.g. ${fn}(amount)` };
  if (argument === '*' && fn !== 'count') return { ok: false, message: `${fn}(*) is not meaningful; name a field, e.g. ${fn}(amount)` };
  return { ok: true, measure: { name, kind: fn as AggregateKind, argumentSql: argument, expression } };
}
