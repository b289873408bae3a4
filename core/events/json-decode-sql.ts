import type { FieldType } from '../config/config-schema.ts';
import { quoteIdent, quoteLiteral } from '../sql/identifiers.ts';
import type { EventSchema } from '../views/view-definition.ts';

/**
 * Event decoding in DuckDB: the fast path next to `createEventDecoder`, for layers that hand
 * DuckDB the raw JSON text of many records at once (DuckDB parses JSON several times faster
 * than `JSON.parse`).
 *
 * Contract: for every row the query says `_fast`. When `_fast` is true, the row is a valid event
 * and its field columns hold exactly what `createEventDecoder` would produce for the same text.
 * When `_fast` is false nothing is claimed: the caller must decode that row with
 * `createEventDecoder`, which decides whether it is good and, if not, gives the reason and message.
 * So reasons and messages have one implementation, and the SQL only has to recognise a subset of
 * good records — the ordinary ones — conservatively.
 *
 * Where DuckDB's JSON reader (yyjson) is more lenient than `JSON.parse` or disagrees with it, the
 * row is sent to the slow path: trailing commas and NaN/Infinity literals (yyjson accepts them),
 * repeated schema keys (yyjson takes the first, `JSON.parse` the last), leading whitespace, text
 * that is not valid UTF-8, numbers that need JavaScript's rounding (`1.0` for an INTEGER,
 * fractional epoch milliseconds), timestamps in any but the plain `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]`
 * form. The property test beside this file holds the contract against `createEventDecoder`.
 */

/** Largest integer a JSON number carries exactly in JavaScript (`Number.MAX_SAFE_INTEGER`). */
const MAX_SAFE = '9007199254740991';
/** Event times accepted by `parseTimestampMs`: years 1970 to 9999, in epoch milliseconds. */
const MAX_TIMESTAMP_MS = '253402300799999';
const INTEGER_TEXT = `'-?[0-9]+'`;
const ISO_TIMESTAMP_TEXT = `'"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?Z?"'`;

/**
 * A field's value from its JSON text `t` (NULL when absent or null), NULL when the fast path
 * cannot vouch for it. Every value is computed once; whether the field is fine follows from it:
 * `t IS NULL OR value IS NOT NULL` (plus a range for BIGINT).
 */
interface FieldSql {
  readonly value: string;
  /** Extra condition on the computed value (`v`), beyond being non-NULL. */
  readonly check?: (v: string) => string;
}

/**
 * Epoch milliseconds of a JSON number or ISO string, or NULL when the fast path cannot say. At
 * most six fraction digits: the cast keeps microseconds exactly, and epoch_ms truncates them as
 * JavaScript does. The range is `parseTimestampMs`'s: years 1970 to 9999.
 */
function timestampMsSql(t: string): string {
  return `CASE
      WHEN NOT starts_with(${t}, '"') THEN CASE WHEN regexp_full_match(${t}, '[0-9]{1,15}') THEN TRY_CAST(${t} AS BIGINT) END
      WHEN regexp_full_match(${t}, ${ISO_TIMESTAMP_TEXT}) THEN epoch_ms(TRY_CAST(${t}[2:-2] AS TIMESTAMP))
    END`;
}

/** `t` is the field's JSON text; `ms` its epoch milliseconds per `timestampMsSql` (TIMESTAMP only). */
function fieldSql(type: FieldType, t: string, ms: string): FieldSql {
  switch (type) {
    case 'VARCHAR':
      // yyjson re-escapes only quotes, backslashes and control characters.
      return { value: `CASE WHEN starts_with(${t}, '"') THEN CASE WHEN contains(${t}, '\\') THEN json_extract_string(${t}, '$') ELSE ${t}[2:-2] END END` };
    case 'BOOLEAN':
      return { value: `CASE ${t} WHEN 'true' THEN true WHEN 'false' THEN false END` };
    case 'DOUBLE':
      return { value: `TRY_CAST(${t} AS DOUBLE)`, check: (v) => `isfinite(${v})` };
    case 'INTEGER':
      return { value: `CASE WHEN regexp_full_match(${t}, ${INTEGER_TEXT}) THEN TRY_CAST(${t} AS INTEGER) END` };
    case 'BIGINT':
      return {
        value: `CASE WHEN regexp_full_match(${t}, ${INTEGER_TEXT}) THEN TRY_CAST(${t} AS BIGINT) END`,
        check: (v) => `${v} BETWEEN -${MAX_SAFE} AND ${MAX_SAFE}`,
      };
    case 'TIMESTAMP':
      return { value: `epoch_ms(CASE WHEN ${ms} BETWEEN 0 AND ${MAX_TIMESTAMP_MS} THEN ${ms} END)` };
    case 'DATE':
      return { value: `CASE WHEN regexp_full_match(${t}, '"[0-9]{4}-[0-9]{2}-[0-9]{2}"') AND ${t} > '"0000' THEN TRY_CAST(${t}[2:-2] AS DATE) END` };
  }
}

/**
 * Rows the fast path may read: one JSON object, valid for yyjson, with none of the tokens where
 * yyjson is more lenient than JSON.parse, and no schema key twice at the top level. One regular
 * expression (RE2, linear time) finds any of these tokens or a schema key written twice anywhere;
 * only rows it flags pay for telling a nested or quoted repeat from a real one (json_keys). Keys
 * written with \u escapes defeat the textual check, so such rows compare keys as yyjson reads them.
 */
function gateSql(schema: EventSchema, raw: string): string {
  const repeatedKey = schema.fields.map((f) => `"${f.name}"\\s*:.*"${f.name}"\\s*:`);
  const lenient = '(,\\s*[\\]}])|([:,\\[]\\s*[-+]?(?i:nan|inf))';
  const suspicious = quoteLiteral(`(?s)${[...repeatedKey, lenient].join('|')}`);
  const distinctKeys = `len(list_distinct(json_keys(${raw}))) = len(json_keys(${raw}))`;
  return `(${raw}[1] = '{' AND json_valid(${raw})
      AND (NOT regexp_matches(${raw}, ${suspicious}) OR (NOT regexp_matches(${raw}, ${quoteLiteral(lenient)}) AND ${distinctKeys}))
      AND (NOT contains(${raw}, '\\u') OR ${distinctKeys}))`;
}

/**
 * A query over `source` (which has a VARCHAR column `rawColumn`, NULL allowed) returning the
 * `passthrough` columns, one column per schema field with its declared type, and `_fast`.
 * Field columns mean something only where `_fast` is true.
 */
export function jsonDecodeSql(schema: EventSchema, source: string, options: { rawColumn: string; passthrough: readonly string[] }): string {
  const raw = quoteIdent(options.rawColumn);
  const structure = quoteLiteral(JSON.stringify(Object.fromEntries(schema.fields.map((f) => [f.name, 'JSON']))));
  const keep = options.passthrough.map(quoteIdent);
  const list = (items: readonly string[]) => items.join(', ');
  const text = (i: number) => `_t${i}`;
  const value = (i: number) => `_v${i}`;
  const ms = (i: number) => `_ms${i}`;
  const fields = schema.fields.map((f, i) => ({ ...f, index: i, sql: fieldSql(f.type, text(i), ms(i)) }));
  const timestamps = fields.filter((f) => f.type === 'TIMESTAMP');
  const timestampIndex = schema.fields.findIndex((f) => f.name === schema.timestampField);

  const parsed = `SELECT ${list([...keep, `CASE WHEN ${gateSql(schema, raw)} THEN json_transform(${raw}, ${structure}) END AS _j`])} FROM ${source}`;
  const texts = `SELECT ${list([...keep, '_j IS NOT NULL AS _parsed', ...fields.map((f) => `_j.${quoteIdent(f.name)}::VARCHAR AS ${text(f.index)}`)])} FROM (${parsed})`;
  const times = `SELECT *${timestamps.map((f) => `, ${timestampMsSql(text(f.index))} AS ${ms(f.index)}`).join('')} FROM (${texts})`;
  const values = `SELECT *, ${list(fields.map((f) => `${f.sql.value} AS ${value(f.index)}`))} FROM (${times})`;
  const fine = fields.map((f) => {
    const present = f.sql.check ? `coalesce(${f.sql.check(value(f.index))}, false)` : `${value(f.index)} IS NOT NULL`;
    return f.index === timestampIndex ? present : `(${text(f.index)} IS NULL OR ${present})`;
  });
  const fast = `_parsed AND ${fine.join('\n      AND ')}`;
  return `SELECT ${[...keep, ...fields.map((f) => `${value(f.index)} AS ${quoteIdent(f.name)}`), `(${fast}) AS _fast`].join(',\n       ')}
FROM (${values})`;
}
