/**
 * The event times a master-dataset file holds, from its Parquet footer's statistics: every row's
 * timestamp field lies in [min, max], none is NULL. `minSql`/`maxSql` are DuckDB's own rendering
 * of the bounds, so a `TIMESTAMP '…'` literal of them is exactly the bound.
 */
export interface EventTimeRange {
  readonly minMicros: bigint;
  readonly maxMicros: bigint;
  readonly minSql: string;
  readonly maxSql: string;
}

/** Files read by one `read_parquet`, with the event times all of them lie in (undefined: unknown). */
export interface EventTimeGroup {
  readonly paths: readonly string[];
  readonly range: EventTimeRange | undefined;
}

/** Files in the newest group; each older group holds twice as many as the one after it. */
export const NEWEST_GROUP_FILES = 4;

/**
 * Groups files so that a query filtering on event time opens few of them. DuckDB opens and
 * reads the footer of every file in a `read_parquet` list at every query, even those whose
 * statistics then prune every row group (~0.1–0.2 ms a file: with 100 segments, more than the
 * rows a 5-minute query wants). A group whose range is stated in SQL (`ts BETWEEN min AND max`)
 * is dropped by DuckDB's optimizer when the query's filter contradicts it, before any file of
 * it is opened, as Druid and Pinot brokers prune segments by time before asking for them.
 *
 * Newest first (by the latest event time a file holds): groups of 4, 8, 16… files, so the recent
 * past, which most queries ask for, is cut finely, and a few groups cover any history (each
 * group costs DuckDB a bind at every query). Late events widen a file's range downwards, never
 * upwards, so `ts >= x` still skips everything older. Files of unknown range share one group.
 */
export function eventTimeGroups(files: readonly { readonly path: string; readonly range: EventTimeRange | undefined }[]): EventTimeGroup[] {
  const known = files.filter((f) => f.range !== undefined).sort((a, b) => compareMicros(b.range!.maxMicros, a.range!.maxMicros));
  const groups: EventTimeGroup[] = [];
  for (let from = 0, size = NEWEST_GROUP_FILES; from < known.length; from += size, size *= 2) {
    const members = known.slice(from, from + size);
    groups.push({ paths: members.map((f) => f.path), range: spanOf(members.map((f) => f.range!)) });
  }
  const unknown = files.filter((f) => f.range === undefined).map((f) => f.path);
  if (unknown.length > 0) groups.push({ paths: unknown, range: undefined });
  return groups;
}

/** The smallest range holding all of `ranges` (undefined for none). */
export function spanOf(ranges: readonly EventTimeRange[]): EventTimeRange | undefined {
  let span: EventTimeRange | undefined;
  for (const r of ranges) {
    if (!span) span = r;
    else {
      const low = r.minMicros < span.minMicros ? r : span;
      const high = r.maxMicros > span.maxMicros ? r : span;
      span = { minMicros: low.minMicros, minSql: low.minSql, maxMicros: high.maxMicros, maxSql: high.maxSql };
    }
  }
  return span;
}

function compareMicros(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
