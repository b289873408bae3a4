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
 * form. Rows written exactly as JSON.stringify writes a record of the schema (its fields, in schema
 * order) need none of the textual checks for the first three, which are the costly part. The
 * property test beside this file holds the contract against `createEventDecoder`.
 */

/** Largest integer a JSON number carries exactly in JavaScript (`Number.MAX_SAFE_INTEGER`). */
const MAX_SAFE = '9007199254740991';
/** Event times accepted by `parseTimestampMs`: years 1970 to 9999, in epoch milliseconds. */
const MAX_TIMESTAMP_MS = '253402300799999';
const INTEGER_TEXT = `'-?[0-9]+'`;
/** A member written as -0 (`-0`, `-0.00`, `-0e3`), or negative with a negative exponent. */
const NEGATIVE_ZERO_TEXT = `':\\s*-(0(\\.0*)?([eE][+-]?[0-9]+)?\\s*[,}\\]]|[0-9.]+[eE]-)'`;
const ISO_TIMESTAMP_TEXT = `'"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?Z?"'`;

/**
 * A field's value from its JSON text `t` (NULL when absent or null), NULL when the fast path
 * cannot vouch for it. Every value is computed once; whether the field is fine follows from it:
 * `t IS NULL OR value IS NOT NULL` (plus a range for BIGINT).
 */
interface FieldSql {
  readonly value: string;
  /** Extra condition on the computed value (`v`), beyond being non-NULL; `raw` is the row's text. */
  readonly check?: (v: string, raw: string) => string;
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
      // yyjson drops the sign of -0, which JSON.parse keeps: a zero in a row where some member is
      // written as -0 (or as a negative number that may underflow to it) is left to
      // createEventDecoder. A CASE: the search runs on zeros only.
      return { value: `TRY_CAST(${t} AS DOUBLE)`, check: (v, raw) => `CASE WHEN ${v} = 0 THEN NOT regexp_matches(${raw}, ${NEGATIVE_ZERO_TEXT}) ELSE isfinite(${v}) END` };
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
 * Rows json_transform may read: one JSON object, valid for yyjson (which throws on anything else).
 * Checked before the transform, which is the costly part.
 */
function parsableSql(raw: string): string {
  return `starts_with(${raw}, '{') AND json_valid(${raw})`;
}

/**
 * The text JSON.stringify would give for an object of exactly the schema's fields, in schema
 * order, holding the values yyjson read (`texts`: each field's JSON text, NULL for null or absent).
 * A parsable row equal to it needs no gate (see `vouchedSql`): its only members are the schema's
 * keys, each once, spelled without escapes, so yyjson and JSON.parse read the same member for each;
 * and there is no token the gate looks for outside the field values, which themselves are checked
 * by type (an absent field becomes `"f":null` here, which the row then does not equal). NULL
 * where the row's length (in bytes) already differs.
 */
function canonicalTextSql(schema: EventSchema, raw: string, texts: readonly string[]): string {
  const keys = schema.fields.map((f, i) => `${i === 0 ? '{' : ','}${JSON.stringify(f.name)}:`);
  const values = texts.map((t) => `coalesce(${t}, 'null')`);
  // Built only where the lengths agree: rows of another form then cost a sum, not a string.
  const length = `${Buffer.byteLength(`${keys.join('')}}`)} + ${values.map((v) => `strlen(${v})`).join(' + ')}`;
  const text = `concat(${[...keys.flatMap((k, i) => [quoteLiteral(k), values[i]!]), `'}'`].join(', ')})`;
  return `CASE WHEN strlen(${raw}) = ${length} THEN ${text} END`;
}

/**
 * Whether the fast path may read a row (`parsed`: its json_transform, NULL when not parsable):
 * a parsable row with none of the tokens where yyjson is more lenient than
 * JSON.parse, and no schema key twice at the top level. Rows in the canonical form
 * (`canonicalTextSql`, what producers serializing a record of the schema write) are vouched for
 * by comparing them with it. For the others, one regular expression (RE2, linear time) finds any
 * of these tokens or a schema key written twice anywhere; only rows it flags pay for telling a
 * nested or quoted repeat from a real one (json_keys). Keys written with \u escapes defeat the
 * textual check, so such rows compare keys as yyjson reads them. One CASE, so that each test runs
 * only on the rows the ones before it left undecided (json_keys only on parsed rows).
 */
function vouchedSql(schema: EventSchema, raw: string, parsed: string, canonical: string): string {
  const repeatedKey = schema.fields.map((f) => `"${f.name}"\\s*:.*"${f.name}"\\s*:`);
  const lenient = '(,\\s*[\\]}])|([:,\\[]\\s*[-+]?(?i:nan|inf))';
  const suspicious = quoteLiteral(`(?s)${[...repeatedKey, lenient].join('|')}`);
  const distinctKeys = `len(list_distinct(json_keys(${raw}))) = len(json_keys(${raw}))`;
  return `CASE WHEN ${parsed} IS NULL THEN false
      WHEN ${raw} = ${canonical} THEN true
      WHEN (NOT regexp_matches(${raw}, ${suspicious}) OR (NOT regexp_matches(${raw}, ${quoteLiteral(lenient)}) AND ${distinctKeys}))
        AND (NOT contains(${raw}, '\\u') OR ${distinctKeys}) THEN true
      ELSE false END`;
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

  // The raw text is carried to the gate, which needs it beside the field texts.
  const withRaw = keep.includes(raw) ? keep : [...keep, raw];
  const parsed = `SELECT ${list([...withRaw, `CASE WHEN ${parsableSql(raw)} THEN json_transform(${raw}, ${structure}) END AS _j`])} FROM ${source}`;
  const fieldTexts = `SELECT ${list([...withRaw, '_j', ...fields.map((f) => `_j.${quoteIdent(f.name)}::VARCHAR AS ${text(f.index)}`)])} FROM (${parsed})`;
  const vouched = vouchedSql(schema, raw, '_j', canonicalTextSql(schema, raw, fields.map((f) => text(f.index))));
  const texts = `SELECT ${list([...withRaw, `${vouched} AS _parsed`, ...fields.map((f) => text(f.index))])} FROM (${fieldTexts})`;
  const times = `SELECT *${timestamps.map((f) => `, ${timestampMsSql(text(f.index))} AS ${ms(f.index)}`).join('')} FROM (${texts})`;
  const values = `SELECT *, ${list(fields.map((f) => `${f.sql.value} AS ${value(f.index)}`))} FROM (${times})`;
  const fine = fields.map((f) => {
    const present = f.sql.check ? `coalesce(${f.sql.check(value(f.index), raw)}, false)` : `${value(f.index)} IS NOT NULL`;
    return f.index === timestampIndex ? present : `(${text(f.index)} IS NULL OR ${present})`;
  });
  const fast = `_parsed AND ${fine.join('\n      AND ')}`;
  return `SELECT ${[...keep, ...fields.map((f) => `${value(f.index)} AS ${quoteIdent(f.name)}`), `(${fast}) AS _fast`].join(',\n       ')}
FROM (${values})`;
}
