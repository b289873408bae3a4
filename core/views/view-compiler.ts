import { createHash } from 'node:crypto';
import { quoteIdent } from '../sql/identifiers.ts';
import type { AggregateKind, Measure } from './measure.ts';
import { WINDOW_START, type EventSchema, type ViewDefinition } from './view-definition.ts';

/**
 * One column of a view's mergeable state. `partial` aggregates source rows into the state;
 * `merge` aggregates states into a state of the same type, so that merging is closed and any
 * split of the input into parts, merged in any order, gives the same state.
 */
export interface StateColumn {
  readonly name: string;
  readonly measure: string;
  readonly partial: string;
  readonly merge: (column: string) => string;
}

/** An extra grouping column for partial state, e.g. the speed layer's offset block. */
export interface ExtraKey {
  readonly name: string;
  /** SQL over the source's columns; defaults to the column of the same name. */
  readonly sql?: string;
}

/**
 * A view compiled to the three DuckDB queries both layers run (DESIGN.md, "One definition, one
 * engine"). Each takes the SQL of a relation (a table name, `read_parquet(...)`, a subquery).
 */
export interface CompiledView {
  readonly definition: ViewDefinition;
  /** Hash of everything that determines the view's contents; a change forces a recompute. */
  readonly definitionHash: string;
  /** `window_start` (windowed views only), then the dimensions. */
  readonly keyColumns: readonly string[];
  readonly stateColumns: readonly StateColumn[];
  /** Key columns, then the measures: what users query. */
  readonly outputColumns: readonly string[];
  /** Source events → partial state per key (and per extra key). */
  partialSql(source: string, extraKeys?: readonly ExtraKey[]): string;
  /** Partial states → one merged state per key (and per extra key kept). */
  mergeSql(source: string, keepKeys?: readonly string[]): string;
  /**
   * Merged states (one row per key) → user-visible columns, then `extraColumns` (SQL select
   * expressions over the source, e.g. its state columns kept beside the measures).
   */
  finalizeSql(source: string, extraColumns?: readonly string[]): string;
  /** Partial states, any number per key → user-visible columns, in one pass. */
  mergeFinalizeSql(source: string): string;
  /**
   * Each measure as `finalize(merge(its state columns)) AS "<measure>"`: aggregate expressions over
   * state rows, to group by any keys (the rollups, core/views/view-rollup.ts).
   */
  readonly mergedMeasures: readonly string[];
}

interface MeasureCompiler {
  states(measure: Measure): { suffix: string; partial: string; merge: (column: string) => string }[];
  finalize(stateRef: (suffix: string) => string): string;
}

const sumMerge = (column: string) => `sum(${column})`;
const countMerge = (column: string) => `sum(${column})::BIGINT`;

const MEASURES: Readonly<Record<AggregateKind, MeasureCompiler>> = {
  count: {
    states: (m) => [{ suffix: 'count', partial: `count(${m.argumentSql})`, merge: countMerge }],
    finalize: (ref) => ref('count'),
  },
  sum: {
    states: (m) => [{ suffix: 'sum', partial: `sum(${m.argumentSql})`, merge: sumMerge }],
    finalize: (ref) => ref('sum'),
  },
  min: {
    states: (m) => [{ suffix: 'min', partial: `min(${m.argumentSql})`, merge: (c) => `min(${c})` }],
    finalize: (ref) => ref('min'),
  },
  max: {
    states: (m) => [{ suffix: 'max', partial: `max(${m.argumentSql})`, merge: (c) => `max(${c})` }],
    finalize: (ref) => ref('max'),
  },
  // An average is carried as its sum and count, never as an average of averages.
  avg: {
    states: (m) => [
      { suffix: 'sum', partial: `sum(${m.argumentSql})`, merge: sumMerge },
      { suffix: 'count', partial: `count(${m.argumentSql})`, merge: countMerge },
    ],
    finalize: (ref) => `CASE WHEN coalesce(${ref('count')}, 0) = 0 THEN NULL ELSE ${ref('sum')}::DOUBLE / ${ref('count')} END`,
  },
  approx_count_distinct: {
    states: (m) => [
      {
        suffix: 'sketch',
        partial: `lambda_kmv_from_hashes(list(hash(${m.argumentSql})) FILTER (WHERE (${m.argumentSql}) IS NOT NULL))`,
        merge: (c) => `lambda_kmv_merge(list(${c}))`,
      },
    ],
    finalize: (ref) => `lambda_kmv_estimate(${ref('sketch')})`,
  },
};

function stateName(measure: string, suffix: string): string {
  return `${measure}__${suffix}`;
}

function windowBucketSql(windowMs: number, timestampField: string): string {
  return `time_bucket(INTERVAL '${windowMs} milliseconds', ${quoteIdent(timestampField)}, TIMESTAMP '1970-01-01 00:00:00')`;
}

/**
 * GROUP BY the first `count` columns. With no keys the query is a plain aggregate, which over no
 * rows would still produce one all-NULL row; HAVING drops it, so no input means no rows.
 */
function groupBy(count: number): string {
  return count === 0 ? '\nHAVING count(*) > 0' : `\nGROUP BY ${Array.from({ length: count }, (_, i) => i + 1).join(', ')}`;
}

export function definitionHash(view: ViewDefinition, schema: EventSchema): string {
  const canonical = JSON.stringify({
    windowMs: view.windowMs,
    dimensions: view.dimensions,
    filter: view.filter ?? null,
    measures: view.measures.map((m) => [m.name, m.kind, m.argumentSql]),
    timestampField: schema.timestampField,
    fields: schema.fields.map((f) => [f.name, f.type]),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Compiles a view definition to its partial, merge and finalize SQL. Pure: no I/O. */
export function compileView(view: ViewDefinition, schema: EventSchema): CompiledView {
  const keyColumns = [...(view.windowMs === null ? [] : [WINDOW_START]), ...view.dimensions];
  const perMeasure = view.measures.map((measure) => {
    const compiler = MEASURES[measure.kind];
    const states = compiler.states(measure).map((s) => ({ ...s, name: stateName(measure.name, s.suffix) }));
    return { measure, compiler, states };
  });
  const stateColumns: StateColumn[] = perMeasure.flatMap(({ measure, states }) =>
    states.map((s) => ({ name: s.name, measure: measure.name, partial: s.partial, merge: s.merge })),
  );
  const quotedKeys = keyColumns.map(quoteIdent);

  const keyExpressions = [
    ...(view.windowMs === null ? [] : [`${windowBucketSql(view.windowMs, schema.timestampField)} AS ${quoteIdent(WINDOW_START)}`]),
    ...view.dimensions.map(quoteIdent),
  ];
  const where = view.filter ? `\nWHERE (${view.filter})` : '';

  function partialSql(source: string, extraKeys: readonly ExtraKey[] = []): string {
    const keys = [...keyExpressions, ...extraKeys.map((k) => (k.sql ? `${k.sql} AS ${quoteIdent(k.name)}` : quoteIdent(k.name)))];
    const states = stateColumns.map((s) => `${s.partial} AS ${quoteIdent(s.name)}`);
    return `SELECT ${[...keys, ...states].join(',\n       ')}\nFROM ${source}${where}${groupBy(keys.length)}`;
  }

  function mergeSql(source: string, keepKeys: readonly string[] = []): string {
    const keys = [...quotedKeys, ...keepKeys.map(quoteIdent)];
    const states = stateColumns.map((s) => `${s.merge(quoteIdent(s.name))} AS ${quoteIdent(s.name)}`);
    return `SELECT ${[...keys, ...states].join(',\n       ')}\nFROM ${source}${groupBy(keys.length)}`;
  }

  function finalizeColumns(stateRef: (measure: string, suffix: string) => string): string[] {
    return perMeasure.map(
      ({ measure, compiler }) => `${compiler.finalize((suffix) => stateRef(measure.name, suffix))} AS ${quoteIdent(measure.name)}`,
    );
  }

  function finalizeSql(source: string, extraColumns: readonly string[] = []): string {
    const measures = finalizeColumns((m, suffix) => quoteIdent(stateName(m, suffix)));
    return `SELECT ${[...quotedKeys, ...measures, ...extraColumns].join(',\n       ')}\nFROM ${source}`;
  }

  const mergeOf = new Map(stateColumns.map((s) => [s.name, s.merge(quoteIdent(s.name))]));
  const mergedMeasures = finalizeColumns((m, suffix) => `(${mergeOf.get(stateName(m, suffix))})`);

  function mergeFinalizeSql(source: string): string {
    return `SELECT ${[...quotedKeys, ...mergedMeasures].join(',\n       ')}\nFROM ${source}${groupBy(quotedKeys.length)}`;
  }

  return {
    definition: view,
    definitionHash: definitionHash(view, schema),
    keyColumns,
    stateColumns,
    outputColumns: [...keyColumns, ...view.measures.map((m) => m.name)],
    partialSql,
    mergeSql,
    finalizeSql,
    mergeFinalizeSql,
    mergedMeasures,
  };
}
