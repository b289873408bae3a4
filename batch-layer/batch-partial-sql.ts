import type { DuckDBConnection } from '@duckdb/node-api';
import { holdsViewAsDefined, type BatchManifest } from '../core/batch/batch-manifest.ts';
import { batchViewFile } from '../core/batch/batch-version-files.ts';
import { quoteIdent, quoteLiteral } from '../core/sql/identifiers.ts';
import { compileView, type CompiledView } from '../core/views/view-compiler.ts';
import type { EventSchema } from '../core/views/view-definition.ts';

const HASH_KEY_PREFIX = '__lambda_distinct_hash_';

/**
 * How the batch computes a view's partial state; both give exactly the same state (a sketch being the set of its hashes).
 * - `one-step`: the view's compiled partial SQL: the sketch of a key is built from the list of
 *   the hashes of all its events.
 * - `per-hash`: first aggregated per key *and* per hash of the counted value, which collapses
 *   the repeats of a value within a key to one row; then merged per key. Cheaper when values
 *   repeat a lot within a key (a user's many clicks on a page); much dearer when they do not,
 *   because the first step then has about one group per event.
 */
export type PartialPlan = 'one-step' | 'per-hash';

/** A view's partial state over `source`, as `view.partialSql(source)` computes it, by `plan`. */
export function batchPartialSql(view: CompiledView, schema: EventSchema, source: string, plan: PartialPlan): string {
  const distinct = view.definition.measures.filter((m) => m.kind === 'approx_count_distinct');
  if (plan === 'one-step' || distinct.length === 0) return view.partialSql(source);
  // The other measures' partial state, compiled from the same definition (same keys, filter, names).
  const others = compileView({ ...view.definition, measures: view.definition.measures.filter((m) => m.kind !== 'approx_count_distinct') }, schema);
  // hash(NULL) is a value in DuckDB: a NULL argument keeps a NULL key, which the sketch skips.
  const hashKeys = distinct.map((m, i) => ({ name: `${HASH_KEY_PREFIX}${i}`, sql: `CASE WHEN (${m.argumentSql}) IS NOT NULL THEN hash(${m.argumentSql}) END` }));
  const perHash = others.partialSql(source, hashKeys);
  const distinctStates = new Map(distinct.map((m, i) => [view.stateColumns.find((s) => s.measure === m.name)!.name, quoteIdent(hashKeys[i]!.name)]));
  // Merged per key: the other states by their own merge; a sketch from the key's distinct hashes
  // (lambda_kmv_from_hashes also drops the repeats that several distinct measures leave).
  const states = view.stateColumns.map((s) => {
    const hash = distinctStates.get(s.name);
    const merged = hash ? `lambda_kmv_from_hashes(list(${hash}) FILTER (WHERE ${hash} IS NOT NULL))` : s.merge(quoteIdent(s.name));
    return `${merged} AS ${quoteIdent(s.name)}`;
  });
  const keys = view.keyColumns.map(quoteIdent);
  const grouping = keys.length === 0 ? 'HAVING count(*) > 0' : `GROUP BY ${keys.map((_, i) => i + 1).join(', ')}`;
  return `SELECT ${[...keys, ...states].join(',\n       ')}\nFROM (${perHash})\n${grouping}`;
}

/** Below this many events per distinct (key, value) pair, `per-hash` is chosen. */
const REPEATS_FOR_PER_HASH = 4;

/**
 * Chooses the plan for a view from what the previous version of the same definition saw: the
 * distinct (key, value) pairs its sketch states hold (their estimates, as the sketches may be
 * cut) against the events it read. With one distinct measure only (several multiply the pairs
 * of the first step), and `one-step` whenever there is nothing to go by.
 */
export async function choosePartialPlan(connection: DuckDBConnection, rootDir: string, view: CompiledView, previous: BatchManifest | undefined): Promise<PartialPlan> {
  const sketches = view.stateColumns.filter((s) => view.definition.measures.find((m) => m.name === s.measure)?.kind === 'approx_count_distinct');
  const file = previous && batchViewFile(rootDir, previous, view.definition.name);
  if (sketches.length !== 1 || !previous || !file || !holdsViewAsDefined(previous, view.definition.name, view.definitionHash) || previous.eventsRead === 0) return 'one-step';
  try {
    const column = quoteIdent(sketches[0]!.name);
    const result = await connection.runAndReadAll(`SELECT coalesce(sum(lambda_kmv_estimate(${column})), 0)::DOUBLE FROM read_parquet(${quoteLiteral(file)})`);
    const pairs = Number(result.getRows()[0]?.[0] ?? Infinity);
    return pairs * REPEATS_FOR_PER_HASH <= previous.eventsRead ? 'per-hash' : 'one-step';
  } catch {
    // Ignored: the strategy is only a speed hint and one-step is always exact; a real read error recurs, and is reported, when the run reads the file.
    return 'one-step';
  }
}
