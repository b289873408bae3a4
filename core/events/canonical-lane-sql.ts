import type { FieldType } from '../config/config-schema.ts';
import { quoteIdent, quoteLiteral } from '../sql/identifiers.ts';
import type { EventSchema } from '../views/view-definition.ts';

/**
 * The cheap way through event decoding in DuckDB, beside `jsonDecodeSql` (the general route), for
 * the rows nearly every producer writes: the schema's fields, all present, in schema order, in the
 * compact form of JSON.stringify, with no escape sequence anywhere
 * (`{"ts":"2026-01-01T00:00:00.000Z","page":"/a","n":12.5}`).
 *
 * One regular expression (RE2, linear time, no captures) recognises that form field by field,
 * each value in a form that JSON.parse and DuckDB's reader read alike and that json_transform
 * converts to the field's type directly; then json_transform reads the values typed. A row the
 * expression matches is valid JSON for JSON.parse with exactly these members, once each, so
 * `createEventDecoder` sees the same values: strings hold no escape or control character, numbers
 * follow JSON's grammar (both sides round them correctly), times are `YYYY-MM-DDTHH:MM:SS[.sss][Z]`
 * from 1970 on (no zone means UTC on both sides), and what the expression cannot rule out (a day
 * the month lacks, an overflowing number) fails the value check after the conversion. About half
 * the general route's cost: no JSON text per field, no re-serialisation, no textual gates.
 */

/** A string value with no escape (so no quote inside) and no control character. */
const STRING = '"[^"\\\\\\x00-\\x1f]*"';
/** JSON's number grammar. */
const NUMBER = '-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?';
/** Years 1970 to 9999 (parseTimestampMs's range), whole milliseconds as toISOString writes them. */
const ISO_TIME = '"(?:19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{3})?Z?"';

interface LaneType {
  /** The value texts recognised (without `null`). */
  readonly pattern: string;
  /** The type json_transform reads it as. */
  readonly read: string;
  /**
   * A condition on the value read (`v`, not NULL) beyond the conversion succeeding; `negative`
   * says whether the member's text starts with a minus.
   */
  readonly check?: (v: string, negative: string) => string;
  /** The column's value from the value read, where it is not the same. */
  readonly value?: (v: string) => string;
}

const LANE_TYPES: Readonly<Record<FieldType, LaneType>> = {
  VARCHAR: { pattern: STRING, read: 'VARCHAR' },
  BOOLEAN: { pattern: 'true|false', read: 'BOOLEAN' },
  // An overflowing number reads as infinity, which createEventDecoder rejects. DuckDB's JSON reader
  // drops the sign of -0, which JSON.parse keeps: such a value is left to createEventDecoder.
  DOUBLE: { pattern: NUMBER, read: 'DOUBLE', check: (v, negative) => `CASE WHEN ${v} = 0 THEN NOT ${negative} ELSE isfinite(${v}) END` },
  // Ten digits at most, read as BIGINT: the range check decides, never a failed conversion.
  INTEGER: {
    pattern: '-?(?:0|[1-9][0-9]{0,9})',
    read: 'BIGINT',
    check: (v) => `${v} BETWEEN -2147483648 AND 2147483647`,
    value: (v) => `CASE WHEN ${v} BETWEEN -2147483648 AND 2147483647 THEN ${v}::INTEGER END`,
  },
  // A number JSON.parse reads exactly (15 digits, below 2^53), or a string of at most 18 digits.
  BIGINT: { pattern: '-?(?:0|[1-9][0-9]{0,14})|"-?[0-9]{1,18}"', read: 'BIGINT' },
  // Epoch milliseconds and other time forms are left to the general route.
  TIMESTAMP: { pattern: ISO_TIME, read: 'TIMESTAMP' },
  // Year 0000 is left to the general route (JavaScript and DuckDB count the years before 1 apart).
  DATE: { pattern: '"[0-9]{4}-[0-9]{2}-[0-9]{2}"', read: 'DATE', check: (v) => `${v} >= DATE '0001-01-01'` },
};

/** `text` as a literal inside an RE2 expression. */
function regexLiteral(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A query over `source` (VARCHAR column `rawColumn`, NULL allowed) returning the `passthrough`
 * columns, one column per schema field with its type, `_fast` and `_general`:
 *   - `_general`: the row is not in the canonical form; nothing else about it is claimed, and the
 *     general route (`jsonDecodeSql`) must decode it;
 *   - otherwise `_fast` says whether its field columns hold what `createEventDecoder` gives; a row
 *     in the canonical form that is not `_fast` (a day the month lacks, say) is one
 *     `createEventDecoder` must see, as for the general route.
 * Undefined when a field name needs escaping in JSON (the form would hold escapes).
 */
export function canonicalLaneSql(schema: EventSchema, source: string, options: { rawColumn: string; passthrough: readonly string[] }): string | undefined {
  const keys = schema.fields.map((f) => JSON.stringify(f.name));
  if (keys.some((k) => k.includes('\\'))) return undefined;
  const raw = quoteIdent(options.rawColumn);
  const members = schema.fields.map((f, i) => `${regexLiteral(keys[i]!)}:(?:${LANE_TYPES[f.type].pattern}${f.name === schema.timestampField ? '' : '|null'})`);
  const pattern = quoteLiteral(`\\{${members.join(',')}\\}`);
  const structure = quoteLiteral(JSON.stringify(Object.fromEntries(schema.fields.map((f) => [f.name, LANE_TYPES[f.type].read]))));
  const keep = options.passthrough.map(quoteIdent);
  const read = `SELECT ${[...keep, raw, `CASE WHEN regexp_full_match(${raw}, ${pattern}) THEN json_transform(${raw}, ${structure}) END AS _j`].join(', ')} FROM ${source}`;
  // A NULL value is fine only where the member was written as null (no string holds a quote, so
  // `"name":null` occurs nowhere else); otherwise the conversion failed.
  const fine = schema.fields.map((f, i) => {
    const v = `_j.${quoteIdent(f.name)}`;
    const check = LANE_TYPES[f.type].check;
    // The member is there once, and no string holds a quote: `"name":-` occurs nowhere else.
    const negative = `contains(${raw}, ${quoteLiteral(`${keys[i]}:-`)})`;
    const present = check ? `coalesce(${check(v, negative)}, false)` : `${v} IS NOT NULL`;
    // A CASE, so that the text is searched only on the rows that need it.
    return f.name === schema.timestampField ? present : `CASE WHEN ${present} THEN true ELSE ${v} IS NULL AND contains(${raw}, ${quoteLiteral(`${keys[i]}:null`)}) END`;
  });
  const fields = schema.fields.map((f) => {
    const v = `_j.${quoteIdent(f.name)}`;
    return `${LANE_TYPES[f.type].value?.(v) ?? v} AS ${quoteIdent(f.name)}`;
  });
  return `SELECT ${[...keep, ...fields, `coalesce(_j IS NOT NULL AND ${fine.join(' AND ')}, false) AS _fast`, '_j IS NULL AS _general'].join(', ')}
FROM (${read})`;
}
