/**
 * DuckDB's aggregate and window functions (from `duckdb_functions()` of DuckDB 1.5, where
 * function_type = 'aggregate'), by name.
 */
const AGGREGATE_FUNCTIONS: ReadonlySet<string> = new Set(
  `any_value approx_count_distinct approx_quantile approx_top_k arbitrary arg_max arg_max_null arg_max_nulls_last
  arg_min arg_min_null arg_min_nulls_last argmax argmin array_agg avg bit_and bit_or bit_xor bitstring_agg bool_and
  bool_or corr count count_if count_star countif covar_pop covar_samp cume_dist dense_rank entropy favg fill first
  first_value fsum group_concat histogram histogram_exact kahan_sum kurtosis kurtosis_pop lag last last_value lead
  list listagg mad max max_by mean median min min_by mode nth_value ntile percent_rank product quantile quantile_cont
  quantile_disc rank rank_dense regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy
  regr_syy reservoir_quantile row_number sem skewness stddev stddev_pop stddev_samp string_agg sum sum_no_overflow
  sumkahan var_pop var_samp variance`.split(/\s+/),
);

/**
 * The first aggregate or window function an SQL expression calls (`sum(views) > 3` → "sum"), or
 * undefined. A lexical check, not a parser: string literals and quoted identifiers are skipped,
 * and a call is a name followed by `(`. DuckDB binds the expression afterwards (bindViews), which
 * catches everything else; what it cannot catch is an aggregate, legal in its probe query but
 * not in a per-instance condition.
 */
export function aggregateCallIn(expression: string): string | undefined {
  const code = expression.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"/g, ' ');
  for (const match of code.matchAll(/(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)) {
    const name = match[1]!.toLowerCase();
    if (AGGREGATE_FUNCTIONS.has(name)) return name;
  }
  if (/\bover\s*\(/i.test(code)) return 'over';
  return undefined;
}
