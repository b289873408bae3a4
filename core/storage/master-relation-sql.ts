import { quoteIdent, quoteLiteral } from '../sql/identifiers.ts';
import type { EventSchema } from '../views/view-definition.ts';
import type { ColumnType } from '../duckdb/column-types.ts';
import { eventTimeGroups, spanOf, type EventTimeRange } from './event-time-groups.ts';
import { masterSegmentColumns } from './segment-columns.ts';

/** Files whose every row is wanted, and files of which only offsets below a cut are. */
export interface SegmentSelection {
  readonly wholeFiles: readonly string[];
  readonly cutFiles: readonly {
    readonly path: string;
    readonly partition: number;
    readonly cutExclusive: number;
    /** The event times of the file's rows below the cut, when known (narrower than the file's). */
    readonly rangeBelowCut?: EventTimeRange | undefined;
  }[];
  /**
   * Every file has the same columns in the same order: DuckDB then need not read each file's
   * schema to unify them by name (union_by_name costs a quarter of a short query over 100 files).
   */
  readonly sameSchema?: boolean;
  /**
   * Each file's event-time range (from its footer; undefined when unknown). With it, files are
   * read in groups bounded by event time (eventTimeGroups), so a query filtering on the timestamp
   * field never opens the files it cannot want. For relations queried again and again (the
   * serving layer's `events`); a batch run reads every file anyway.
   */
  readonly eventTimeRanges?: ReadonlyMap<string, EventTimeRange | undefined>;
}

/** An empty relation with exactly these columns and types. */
export function emptyRelationSql(columns: readonly ColumnType[]): string {
  return `(SELECT ${columns.map((c) => `NULL::${c.type} AS ${quoteIdent(c.name)}`).join(', ')} WHERE false)`;
}

function readParquet(files: readonly string[], sameSchema: boolean): string {
  return `read_parquet([${files.map(quoteLiteral).join(', ')}]${sameSchema ? '' : ', union_by_name = true'})`;
}

/** `column BETWEEN min AND max`, exact to the microsecond; true when the range is unknown. */
function withinSql(column: string, range: EventTimeRange | undefined): string[] {
  return range ? [`${quoteIdent(column)} BETWEEN TIMESTAMP ${quoteLiteral(range.minSql)} AND TIMESTAMP ${quoteLiteral(range.maxSql)}`] : [];
}

function selectSql(files: readonly string[], sameSchema: boolean, where: readonly string[]): string {
  return `SELECT * FROM ${readParquet(files, sameSchema)}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''}`;
}

/**
 * SQL of a relation (for `FROM`) over chosen master-dataset files, with the columns of
 * `masterSegmentColumns(schema)`. Files are named one by one (from segment-chain.ts), never by
 * glob, so overlapping leftovers are never read. With no files it is an empty relation of the
 * same columns, so compiled view SQL binds either way.
 */
export function masterRelationSql(schema: EventSchema, selection: SegmentSelection): string {
  const columns = masterSegmentColumns(schema);
  const sameSchema = selection.sameSchema ?? false;
  const ranges = selection.eventTimeRanges;
  const parts: string[] = [];
  if (selection.wholeFiles.length > 0) {
    const groups = ranges ? eventTimeGroups(selection.wholeFiles.map((path) => ({ path, range: ranges.get(path) }))) : [{ paths: selection.wholeFiles, range: undefined }];
    for (const group of groups) parts.push(selectSql(group.paths, sameSchema, withinSql(schema.timestampField, group.range)));
  }
  if (selection.cutFiles.length > 0) {
    const below = selection.cutFiles.map((f) => `(_partition = ${f.partition} AND _offset < ${f.cutExclusive})`);
    const cutRanges = ranges ? selection.cutFiles.map((f) => f.rangeBelowCut ?? ranges.get(f.path)) : [undefined];
    const range = cutRanges.every((r) => r !== undefined) ? spanOf(cutRanges) : undefined;
    parts.push(selectSql(selection.cutFiles.map((f) => f.path), sameSchema, [`(${[...new Set(below)].join(' OR ')})`, ...withinSql(schema.timestampField, range)]));
  }
  if (parts.length === 0) return emptyRelationSql(columns);
  return `(${parts.join(' UNION ALL BY NAME ')})`;
}

/**
 * Wraps `relation` so it has every column of the schema with its declared type, when the files
 * were written under an older schema: a field added since is NULL, a field whose type changed is
 * cast. `present` are the relation's actual columns (e.g. from describeQuery). Unchanged when
 * nothing differs, so the common case costs nothing.
 */
export function conformRelationSql(relation: string, schema: EventSchema, present: readonly ColumnType[]): string {
  const actual = new Map(present.map((c) => [c.name, c.type]));
  const columns = masterSegmentColumns(schema);
  if (columns.every((c) => actual.get(c.name) === c.type)) return relation;
  const select = columns.map((c) => {
    const type = actual.get(c.name);
    if (type === undefined) return `NULL::${c.type} AS ${quoteIdent(c.name)}`;
    return type === c.type ? quoteIdent(c.name) : `TRY_CAST(${quoteIdent(c.name)} AS ${c.type}) AS ${quoteIdent(c.name)}`;
  });
  return `(SELECT ${select.join(', ')} FROM ${relation})`;
}
