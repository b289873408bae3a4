import {
  DuckDBDecimalValue,
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  arrayFromArrayValue,
  arrayFromListValue,
  objectArrayFromMapValue,
  objectFromStructValue,
  objectFromUnionValue,
  type DuckDBType,
  type DuckDBValue,
  type DuckDBValueConverter,
} from '@duckdb/node-api';
import type { JsonValue } from './query-result.ts';

const MIN_DATE_MS = -8_640_000_000_000_000n;
const MAX_DATE_MS = 8_640_000_000_000_000n;

/**
 * Converts a DuckDB value to what a JSON client can use without surprises:
 *   BIGINT, HUGEINT (and unsigned)  number when it is a safe integer, else its decimal string
 *   DECIMAL                         number (a double)
 *   TIMESTAMP, TIMESTAMPTZ (all     ISO-8601 in UTC with `Z`; sub-millisecond digits only when
 *     precisions)                     present; ±infinity and out-of-range values as DuckDB prints them
 *   DATE                            `YYYY-MM-DD`
 *   FLOAT, DOUBLE                   number; NaN and ±Infinity as strings
 *   LIST, ARRAY, STRUCT, MAP, UNION JSON arrays and objects of converted values
 *   anything else                   as @duckdb/node-api's JSON converter gives it (mostly strings)
 */
export const jsonValueConverter: DuckDBValueConverter<JsonValue> = (value, type, converter) => {
  if (value === null || value === undefined) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
    case DuckDBTypeId.BIGNUM:
      return numberOrString(value);
    case DuckDBTypeId.DECIMAL:
      return (value as DuckDBDecimalValue).toDouble();
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return Number.isFinite(value) ? (value as number) : String(value);
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      return isoTimestamp(value, (value as { micros: bigint }).micros, 1_000n);
    case DuckDBTypeId.TIMESTAMP_MS:
      return isoTimestamp(value, (value as { millis: bigint }).millis, 1n);
    case DuckDBTypeId.TIMESTAMP_S:
      return isoTimestamp(value, (value as { seconds: bigint }).seconds * 1_000n, 1n);
    case DuckDBTypeId.TIMESTAMP_NS:
      return isoTimestamp(value, (value as { nanos: bigint }).nanos, 1_000_000n);
    case DuckDBTypeId.DATE:
      return String(value);
    case DuckDBTypeId.LIST:
      return arrayFromListValue(value, type, converter);
    case DuckDBTypeId.ARRAY:
      return arrayFromArrayValue(value, type, converter);
    case DuckDBTypeId.STRUCT:
      return objectFromStructValue(value, type, converter);
    case DuckDBTypeId.MAP:
      return objectArrayFromMapValue(value, type, converter);
    case DuckDBTypeId.UNION:
      return objectFromUnionValue(value, type, converter);
    default:
      return JsonDuckDBValueConverter(value, type, JsonDuckDBValueConverter);
  }
};

export function convertValue(value: DuckDBValue, type: DuckDBType): JsonValue {
  return jsonValueConverter(value, type, jsonValueConverter);
}

function numberOrString(value: DuckDBValue): number | string {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : String(value);
}

/** `units` counts `unitsPerMs` per millisecond since the epoch (UTC). */
function isoTimestamp(value: DuckDBValue, units: bigint, unitsPerMs: bigint): string {
  const ms = floorDiv(units, unitsPerMs);
  if (ms < MIN_DATE_MS || ms > MAX_DATE_MS) return String(value);
  const iso = new Date(Number(ms)).toISOString();
  const subMs = units - ms * unitsPerMs;
  if (subMs === 0n) return iso;
  const digits = String(unitsPerMs).length - 1;
  return `${iso.slice(0, -1)}${String(subMs).padStart(digits, '0')}Z`;
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}
