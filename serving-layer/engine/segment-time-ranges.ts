import type { DuckDBConnection } from '@duckdb/node-api';
import type { EventTimeRange } from '../../core/storage/event-time-groups.ts';
import { quoteIdent, quoteLiteral } from '../../core/sql/identifiers.ts';

/**
 * Each master-dataset file's event-time range, read once from its Parquet footer: segments never
 * change, so a path's range holds for as long as the path is in the chains. A file has a range
 * only when every row group of it has min/max statistics for the timestamp column, stored as
 * INT64 timestamps, and no NULL; otherwise undefined (read on every query, like before).
 */
export class SegmentTimeRanges {
  private readonly byPath = new Map<string, EventTimeRange | undefined>();
  /** Per file read only below a cut (the split inside it), the event times of the rows below it. */
  private readonly belowCut = new Map<string, { readonly cutExclusive: number; readonly range: EventTimeRange | undefined }>();

  constructor(private readonly timestampField: string) {}

  /**
   * The event times of the rows of `file` with offsets below `cutExclusive`, read once per cut
   * (the split moves seldom): narrower than the file's, so that `events` skips the file when a
   * query wants only event times above those rows (the tail holds the rest of the file). Undefined
   * where the file's range is unknown (NULL or unusable timestamps).
   */
  async rangeBelow(connection: DuckDBConnection, file: string, cutExclusive: number): Promise<EventTimeRange | undefined> {
    const known = this.belowCut.get(file);
    if (known?.cutExclusive === cutExclusive) return known.range;
    let range: EventTimeRange | undefined;
    if (this.byPath.get(file)) {
      const ts = quoteIdent(this.timestampField);
      const reader = await connection.runAndReadAll(
        `SELECT epoch_us(min(${ts})), epoch_us(max(${ts})), min(${ts})::VARCHAR, max(${ts})::VARCHAR FROM read_parquet(${quoteLiteral(file)}) WHERE _offset < ${cutExclusive}`,
      );
      const [minMicros, maxMicros, minSql, maxSql] = reader.getRows()[0] as [bigint | null, bigint | null, string | null, string | null];
      if (minMicros !== null && maxMicros !== null && minSql !== null && maxSql !== null) range = { minMicros, maxMicros, minSql, maxSql };
    }
    this.belowCut.set(file, { cutExclusive, range });
    return range;
  }

  /** The ranges of `files`; forgets files not among them (merged away, deleted). */
  async rangesOf(connection: DuckDBConnection, files: readonly string[]): Promise<ReadonlyMap<string, EventTimeRange | undefined>> {
    const unknown = files.filter((f) => !this.byPath.has(f));
    if (unknown.length > 0) {
      for (const file of unknown) this.byPath.set(file, undefined);
      // Row groups without the column (an older schema) have no row here: compared with the count of row groups.
      const reader = await connection.runAndReadAll(`WITH groups AS (SELECT file_name, count(DISTINCT row_group_id) AS n FROM parquet_metadata([${unknown.map(quoteLiteral).join(', ')}]) GROUP BY file_name),
        ts AS (SELECT file_name, count(*) AS n, bool_and(coalesce(type = 'INT64' AND stats_null_count = 0 AND isfinite(TRY_CAST(stats_min_value AS TIMESTAMP)) AND isfinite(TRY_CAST(stats_max_value AS TIMESTAMP)), false)) AS usable,
                 min(TRY_CAST(stats_min_value AS TIMESTAMP)) AS lo, max(TRY_CAST(stats_max_value AS TIMESTAMP)) AS hi
          FROM parquet_metadata([${unknown.map(quoteLiteral).join(', ')}]) WHERE path_in_schema = ${quoteLiteral(this.timestampField)} GROUP BY file_name)
        SELECT file_name, epoch_us(lo), epoch_us(hi), lo::VARCHAR, hi::VARCHAR FROM ts JOIN groups USING (file_name) WHERE usable AND ts.n = groups.n`);
      for (const [file, minMicros, maxMicros, minSql, maxSql] of reader.getRows() as [string, bigint, bigint, string, string][]) {
        this.byPath.set(file, { minMicros, maxMicros, minSql, maxSql });
      }
    }
    const wanted = new Set(files);
    for (const path of this.byPath.keys()) if (!wanted.has(path)) this.byPath.delete(path);
    for (const path of this.belowCut.keys()) if (!wanted.has(path)) this.belowCut.delete(path);
    return this.byPath;
  }
}
