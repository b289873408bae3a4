import { quoteIdent, quoteLiteral } from '../sql/identifiers.ts';
import type { EventSchema } from '../views/view-definition.ts';
import type { ColumnType } from '../duckdb/column-types.ts';
import { masterSegmentColumns } from './segment-columns.ts';

/** Files whose every row is wanted, and files of which only offsets below a cut are. */
export interface SegmentSelection {
  readonly wholeFiles: readonly string[];
  readonly cutFiles: readonly { readonly path: string; readonly partition: number; readonly cutExclusive: number }[];
  /**
   * Every file has the same columns in the same order: DuckDB then need not read each file's
   * schema to unify them by name (union_by_name costs a quarter of a short query over 100 files).
   */
  readonly sameSchema?: boolean;
}

/** An empty relation with exactly these columns and types. */
export function emptyRelationSql(columns: readonly ColumnType[]): string {
  return `(SELECT ${columns.map((c) => `NULL::${c.type} AS ${quoteIdent(c.name)}`).join(', ')} WHERE false)`;
}

function readParquet(files: readonly string[], sameSchema: boolean): string {
  return `read_parquet([${files.map(quoteLiteral).join(', ')}]${sameSchema ? '' : ', union_by_name = true'})`;
}

/**
 * SQL of a relation (for `FROM`) over chosen master-dataset files, with the columns of
 * `masterSegmentColumns(schema)`. Files are named one by one (from segment-chain.ts), never by
 * glob, so overlapping leftovers are never read. With no files it is an empty relation of the
 * same columns, so compiled view SQL binds either way.
 */
export function masterRelationSql(schema: EventSchema, selection: SegmentSelection): string {
  const columns = masterSegmentColumns(schema);
  const parts: string[] = [];
  if (selection.wholeFiles.length > 0) parts.push(`SELECT * FROM ${readParquet(selection.wholeFiles, selection.sameSchema ?? false)}`);
  if (selection.cutFiles.length > 0) {
    const below = selection.cutFiles.map((f) => `(_partition = ${f.partition} AND _offset < ${f.cutExclusive})`);
    parts.push(`SELECT * FROM ${readParquet(selection.cutFiles.map((f) => f.path), selection.sameSchema ?? false)} WHERE ${[...new Set(below)].join(' OR ')}`);
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
