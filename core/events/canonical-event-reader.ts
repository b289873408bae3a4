import type { FieldType } from '../config/config-schema.ts';
import type { EventSchema } from '../views/view-definition.ts';

/** Bytes of one row of a DuckDB VARCHAR vector (duckdb_string_t): a uint32 length, then 12 bytes inline. */
export const STRING_SLOT_BYTES = 16;
const STRING_INLINE_BYTES = 12;

/** Bytes per row of each field type in DuckDB's vector layout. */
export const ROW_BYTES: Readonly<Record<FieldType, number>> = {
  VARCHAR: STRING_SLOT_BYTES,
  BOOLEAN: 1,
  INTEGER: 4,
  DATE: 4,
  DOUBLE: 8,
  BIGINT: 8,
  TIMESTAMP: 8,
};

/**
 * One field's values for `capacity` rows, in DuckDB's vector layout, ready to be copied into a
 * data chunk as they are: DOUBLE as float64, INTEGER as int32, BIGINT as int64, TIMESTAMP as int64
 * microseconds, DATE as int32 days since 1970-01-01, BOOLEAN as one byte, VARCHAR as 16-byte
 * string slots holding strings of up to 12 bytes inline (a longer one leaves its slot zero and
 * is listed in `longStrings`, for the caller to assign natively).
 */
export interface CanonicalColumn {
  readonly type: FieldType;
  readonly data: ArrayBuffer;
  /** 1 where the row's value is NULL (its data is then unspecified). */
  readonly nulls: Uint8Array;
  /** VARCHAR: rows whose string is longer than a slot holds inline, with its UTF-8 bytes. */
  readonly longStrings: Map<number, Uint8Array>;
}

const [VARCHAR_CODE, BOOLEAN_CODE, DOUBLE_CODE, INTEGER_CODE, BIGINT_CODE, TIMESTAMP_CODE, DATE_CODE] = [0, 1, 2, 3, 4, 5, 6];
const TYPE_CODES: Readonly<Record<FieldType, number>> = {
  VARCHAR: VARCHAR_CODE,
  BOOLEAN: BOOLEAN_CODE,
  DOUBLE: DOUBLE_CODE,
  INTEGER: INTEGER_CODE,
  BIGINT: BIGINT_CODE,
  TIMESTAMP: TIMESTAMP_CODE,
  DATE: DATE_CODE,
};

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const DIGIT_0 = 0x30;
const LOWER_E = 0x65;
const UPPER_E = 0x45;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const NULL_BYTES = [0x6e, 0x75, 0x6c, 0x6c];
const TRUE_BYTES = [0x74, 0x72, 0x75, 0x65];
const FALSE_BYTES = [0x66, 0x61, 0x6c, 0x73, 0x65];

/** Powers of ten that doubles hold exactly (10^0 to 10^22). */
const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => 10 ** i);
const MAX_EXACT_MANTISSA = 2 ** 53;
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
/** parseTimestampMs' range: years 1970 to 9999. */
const MAX_TIMESTAMP_MS = 253_402_300_799_999;
const MS_PER_DAY = 86_400_000;
const TWO_32 = 2 ** 32;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Reads events in the form nearly every producer writes, straight from their bytes into column
 * buffers: the schema's fields, each present once, in schema order, in the compact form of
 * JSON.stringify (`{"ts":"2026-01-01T00:00:00.000Z","page":"/a","n":12.5}`), strings without
 * escapes. A record in any other form is declined (`read` returns false), never guessed at: the
 * caller decodes it another way (the SQL decoder, then `createEventDecoder`). A record read is
 * one `createEventDecoder` accepts, with the same values; the property test beside this file
 * holds that:
 *   - the text is JSON that JSON.parse reads to exactly these members (the caller vouches that
 *     the bytes are UTF-8), so only the values need reading;
 *   - numbers follow JSON's grammar and get JavaScript's value (exactly rounded: by one exact
 *     operation where the digits allow, else by `Number` of the text, as JSON.parse reads them);
 *     INTEGER, BIGINT and epoch-millisecond times then take createEventDecoder's checks of that
 *     value;
 *   - times as strings only in toISOString's form, `YYYY-MM-DDTHH:MM:SS.sssZ`, from 1970 on, with
 *     a day the month has (others are declined, not rejected); dates `YYYY-MM-DD` from year 1.
 * A value createEventDecoder would reject is declined too, so rejects keep one implementation.
 */
export class CanonicalEventReader {
  readonly columns: readonly CanonicalColumn[];
  /** The event time of each row read, in epoch milliseconds. */
  readonly timestampsMs: Float64Array;
  /** Per field, its type as a small number (a switch over them is a jump table). */
  private readonly codes: Int32Array;
  private readonly nulls: readonly Uint8Array[];
  /** Per field, the bytes before its value: `{"name":` for the first, `,"name":` for the others. */
  private readonly keys: readonly Uint8Array[];
  private readonly timestampIndex: number;
  private readonly float64: (Float64Array | undefined)[];
  private readonly int32: (Int32Array | undefined)[];
  private readonly bytes: (Uint8Array | undefined)[];

  constructor(schema: EventSchema, readonly capacity: number) {
    this.codes = Int32Array.from(schema.fields, (f) => TYPE_CODES[f.type]);
    this.keys = schema.fields.map((f, i) => new TextEncoder().encode(`${i === 0 ? '{' : ','}${JSON.stringify(f.name)}:`));
    this.timestampIndex = schema.fields.findIndex((f) => f.name === schema.timestampField);
    this.columns = schema.fields.map((f) => ({
      type: f.type,
      data: new ArrayBuffer(capacity * ROW_BYTES[f.type]),
      nulls: new Uint8Array(capacity),
      longStrings: new Map<number, Uint8Array>(),
    }));
    this.float64 = this.columns.map((c) => (c.type === 'DOUBLE' ? new Float64Array(c.data) : undefined));
    this.int32 = this.columns.map((c) => (c.type === 'BOOLEAN' ? undefined : new Int32Array(c.data)));
    this.bytes = this.columns.map((c) => new Uint8Array(c.data));
    this.nulls = this.columns.map((c) => c.nulls);
    this.timestampsMs = new Float64Array(capacity);
  }

  /** A schema whose field names JSON.stringify writes with escapes has no canonical form to read. */
  static supports(schema: EventSchema): boolean {
    return schema.fields.every((f) => !JSON.stringify(f.name).includes('\\'));
  }

  /** Forgets the long strings of the rows read so far (the caller has written them out). */
  clearLongStrings(): void {
    for (const column of this.columns) column.longStrings.clear();
  }

  /**
   * Reads the record in `text[start..end)` into row `row` of every column; false (with the row's
   * data unspecified) when the record is not in the canonical form or not a good event.
   */
  read(text: Uint8Array, start: number, end: number, row: number): boolean {
    let at = start;
    const { codes, keys, nulls } = this;
    for (let f = 0; f < codes.length; f++) {
      const key = keys[f]!;
      if (end - at < key.length) return false;
      for (let k = 0; k < key.length; k++) if (text[at + k] !== key[k]) return false;
      at += key.length;
      if (text[at] === NULL_BYTES[0]) {
        if (f === this.timestampIndex || !matches(text, at, end, NULL_BYTES)) return false;
        nulls[f]![row] = 1;
        const { longStrings } = this.columns[f]!;
        if (longStrings.size > 0) longStrings.delete(row);
        at += NULL_BYTES.length;
        continue;
      }
      nulls[f]![row] = 0;
      at = this.readValue(f, codes[f]!, text, at, end, row);
      if (at < 0) return false;
    }
    return at === end - 1 && text[at] === CLOSE_BRACE;
  }

  /** Reads field `f`'s value at `at`; returns where it ends, or -1 to decline the record. */
  private readValue(f: number, code: number, text: Uint8Array, at: number, end: number, row: number): number {
    switch (code) {
      case VARCHAR_CODE:
        return this.readString(f, text, at, end, row);
      case BOOLEAN_CODE: {
        const value = matches(text, at, end, TRUE_BYTES) ? 1 : matches(text, at, end, FALSE_BYTES) ? 0 : -1;
        if (value < 0) return -1;
        this.bytes[f]![row] = value;
        return at + (value === 1 ? TRUE_BYTES.length : FALSE_BYTES.length);
      }
      case DOUBLE_CODE: {
        const after = readNumber(text, at, end);
        if (after < 0 || !Number.isFinite(numberRead)) return -1;
        this.float64[f]![row] = numberRead;
        return after;
      }
      case INTEGER_CODE: {
        const after = readNumber(text, at, end);
        if (after < 0 || !Number.isInteger(numberRead) || numberRead < INT32_MIN || numberRead > INT32_MAX) return -1;
        this.int32[f]![row] = numberRead;
        return after;
      }
      case BIGINT_CODE:
        return this.readBigint(f, text, at, end, row);
      case TIMESTAMP_CODE:
        return this.readTimestamp(f, text, at, end, row);
      default:
        return this.readDate(f, text, at, end, row);
    }
  }

  private readString(f: number, text: Uint8Array, at: number, end: number, row: number): number {
    if (text[at] !== QUOTE) return -1;
    const from = at + 1;
    let to = from;
    for (; to < end; to++) {
      const byte = text[to]!;
      if (byte === QUOTE) break;
      if (byte === BACKSLASH || byte < 0x20) return -1;
    }
    if (to >= end) return -1;
    const length = to - from;
    const slots = this.bytes[f]!;
    const slot = row * STRING_SLOT_BYTES;
    this.int32[f]![row * 4] = length;
    const { longStrings } = this.columns[f]!;
    // Zeroed first: DuckDB compares inline strings by all 16 bytes.
    const int32 = this.int32[f]!;
    int32[row * 4 + 1] = 0;
    int32[row * 4 + 2] = 0;
    int32[row * 4 + 3] = 0;
    if (length <= STRING_INLINE_BYTES) {
      // A record declined after its long string was noted leaves that note on the row.
      if (longStrings.size > 0) longStrings.delete(row);
      for (let k = 0; k < length; k++) slots[slot + 4 + k] = text[from + k]!;
    } else {
      longStrings.set(row, text.subarray(from, to));
    }
    return to + 1;
  }

  /** A safe integer as a number, or a string of at most 15 digits (createEventDecoder takes up to int64 there). */
  private readBigint(f: number, text: Uint8Array, at: number, end: number, row: number): number {
    let after: number;
    let value: number;
    if (text[at] === QUOTE) {
      const negative = text[at + 1] === MINUS;
      let k = at + (negative ? 2 : 1);
      const first = k;
      value = 0;
      for (; k < end && isDigit(text[k]!); k++) value = value * 10 + (text[k]! - DIGIT_0);
      if (k === first || k - first > 15 || text[k] !== QUOTE) return -1;
      if (negative) value = -value;
      after = k + 1;
    } else {
      after = readNumber(text, at, end);
      value = numberRead;
      if (after < 0 || !Number.isSafeInteger(value)) return -1;
    }
    writeInt64(this.int32[f]!, row, value === 0 ? 0 : value);
    return after;
  }

  private readTimestamp(f: number, text: Uint8Array, at: number, end: number, row: number): number {
    let ms: number;
    let after: number;
    if (text[at] === QUOTE) {
      ms = isoTimestampMs(text, at + 1, end);
      if (ms < 0) return -1;
      after = at + 26;
    } else {
      after = readNumber(text, at, end);
      if (after < 0 || !(numberRead >= 0 && numberRead <= MAX_TIMESTAMP_MS)) return -1;
      ms = Math.floor(numberRead);
    }
    // Microseconds as int64: ms * 1000 passes 2^53, so in two exact halves.
    const high = Math.floor(ms / TWO_32);
    const lowMicros = (ms - high * TWO_32) * 1000;
    const carry = Math.floor(lowMicros / TWO_32);
    const int32 = this.int32[f]!;
    int32[row * 2] = lowMicros - carry * TWO_32;
    int32[row * 2 + 1] = high * 1000 + carry;
    if (f === this.timestampIndex) this.timestampsMs[row] = ms;
    return after;
  }

  private readDate(f: number, text: Uint8Array, at: number, end: number, row: number): number {
    if (end - at < 12 || text[at] !== QUOTE || text[at + 5] !== MINUS || text[at + 8] !== MINUS || text[at + 11] !== QUOTE) return -1;
    const year = digitsAt(text, at + 1, 4);
    const month = digitsAt(text, at + 6, 2);
    const day = digitsAt(text, at + 9, 2);
    if (year < 1 || !isCalendarDay(year, month, day)) return -1;
    this.int32[f]![row] = daysFromCivil(year, month, day);
    return at + 12;
  }
}

/** The value of the number `readNumber` read last (a module variable: no object per number). */
let numberRead = 0;

/**
 * Reads a number in JSON's grammar at `at` into `numberRead`, as JSON.parse would; returns where
 * it ends, or -1 if it does not follow the grammar.
 */
function readNumber(text: Uint8Array, at: number, end: number): number {
  const start = at;
  const negative = text[at] === MINUS;
  if (negative) at++;
  let mantissa = 0;
  let digits = 0;
  if (text[at] === DIGIT_0) {
    at++;
  } else {
    const first = at;
    for (; at < end && isDigit(text[at]!); at++) mantissa = mantissa * 10 + (text[at]! - DIGIT_0);
    if (at === first) return -1;
    digits = at - first;
  }
  let exponent = 0;
  if (text[at] === DOT) {
    const first = ++at;
    for (; at < end && isDigit(text[at]!); at++) mantissa = mantissa * 10 + (text[at]! - DIGIT_0);
    if (at === first) return -1;
    digits += at - first;
    exponent = first - at;
  }
  if (text[at] === LOWER_E || text[at] === UPPER_E) {
    at++;
    const negativeExponent = text[at] === MINUS;
    if (negativeExponent || text[at] === PLUS) at++;
    const first = at;
    let written = 0;
    for (; at < end && isDigit(text[at]!); at++) written = written * 10 + (text[at]! - DIGIT_0);
    if (at === first) return -1;
    exponent += negativeExponent ? -written : written;
  }
  // Exact digits and an exact power of ten: one division or multiplication rounds correctly.
  if (digits <= 15 && mantissa <= MAX_EXACT_MANTISSA && exponent >= -22 && exponent <= 22) {
    const magnitude = exponent < 0 ? mantissa / EXACT_POWERS_OF_TEN[-exponent]! : mantissa * EXACT_POWERS_OF_TEN[exponent]!;
    numberRead = negative ? -magnitude : magnitude;
  } else {
    if (at - start > 64) return -1;
    numberRead = Number(String.fromCharCode(...text.subarray(start, at)));
  }
  return at;
}

/** `YYYY-MM-DDTHH:MM:SS.sssZ"` at `at` (after the opening quote), in range: epoch ms, or -1. */
function isoTimestampMs(text: Uint8Array, at: number, end: number): number {
  if (end - at < 25 || text[at + 24] !== QUOTE || text[at + 23] !== 0x5a /* Z */) return -1;
  if (text[at + 4] !== MINUS || text[at + 7] !== MINUS || text[at + 10] !== 0x54 /* T */ || text[at + 13] !== 0x3a || text[at + 16] !== 0x3a || text[at + 19] !== DOT) return -1;
  const year = digitsAt(text, at, 4);
  const month = digitsAt(text, at + 5, 2);
  const day = digitsAt(text, at + 8, 2);
  const hour = digitsAt(text, at + 11, 2);
  const minute = digitsAt(text, at + 14, 2);
  const second = digitsAt(text, at + 17, 2);
  const millis = digitsAt(text, at + 20, 3);
  if (year < 1970 || !isCalendarDay(year, month, day) || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 || millis < 0) return -1;
  return daysFromCivil(year, month, day) * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
}

function isCalendarDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && !leap ? 28 : DAYS_IN_MONTH[month - 1]!);
}

/** Days from 1970-01-01 to a day of the proleptic Gregorian calendar (years from 1). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** `count` digits at `at` as a number, or -1 when one is not a digit. */
function digitsAt(text: Uint8Array, at: number, count: number): number {
  let n = 0;
  for (let k = at; k < at + count; k++) {
    const d = text[k]! - DIGIT_0;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function isDigit(byte: number): boolean {
  return byte >= DIGIT_0 && byte <= DIGIT_0 + 9;
}

function matches(text: Uint8Array, at: number, end: number, literal: readonly number[]): boolean {
  if (end - at < literal.length) return false;
  for (let k = 0; k < literal.length; k++) if (text[at + k] !== literal[k]) return false;
  return true;
}

/** A safe integer into row `row` of an int64 column seen as int32 pairs (little-endian). */
export function writeInt64(int32: Int32Array, row: number, value: number): void {
  const high = Math.floor(value / TWO_32);
  int32[row * 2] = value - high * TWO_32;
  int32[row * 2 + 1] = high;
}
