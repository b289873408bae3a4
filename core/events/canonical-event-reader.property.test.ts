import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FieldType } from '../config/config-schema.ts';
import type { EventSchema } from '../views/view-definition.ts';
import { CanonicalEventReader, STRING_SLOT_BYTES, type CanonicalColumn } from './canonical-event-reader.ts';
import { createEventDecoder, type FieldValue } from './decode-event.ts';
import { ALL_FIELD_TYPES } from '../../test/fixtures/all-field-types.ts';
import { seededRandom } from '../random/seeded-random.ts';

/**
 * CanonicalEventReader's contract: a record it reads is one `createEventDecoder` accepts, and the
 * row it filled holds exactly createEventDecoder's values in DuckDB's vector layout; every event
 * JSON.stringify writes in the canonical form is read; rows read again and again hold the last
 * record read into them, with no leftovers of records declined there before.
 */
const schema: EventSchema = ALL_FIELD_TYPES;
const decode = createEventDecoder(schema);
const MAX_MS = 253_402_300_799_999;
const MS_PER_DAY = 86_400_000;
const INLINE_BYTES = 12;
const runs = (numRuns: number) => ({ numRuns });

// ---------------------------------------------------------------------------------------------
// Reading a row back out of the buffers, independently of the reader, and what it should hold.
// ---------------------------------------------------------------------------------------------

/** A value as compared: TIMESTAMP as int64 microseconds, DATE as days, or what went wrong with the layout. */
type Cell = string | number | bigint | boolean | null | { readonly layout: string };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function stringCell(column: CanonicalColumn, row: number): Cell {
  const view = new DataView(column.data);
  const slot = row * STRING_SLOT_BYTES;
  const length = view.getUint32(slot, true);
  const long = column.longStrings.get(row);
  const inline = new Uint8Array(column.data, slot + 4, INLINE_BYTES);
  let bytes: Uint8Array;
  if (length > INLINE_BYTES) {
    if (long === undefined) return { layout: `length ${length} but no long string` };
    if (long.length !== length) return { layout: `length ${length} but a long string of ${long.length} bytes` };
    if (inline.some((b) => b !== 0)) return { layout: 'a long string with inline bytes not zero' };
    bytes = long;
  } else {
    if (long !== undefined) return { layout: `a stale long string (${Buffer.from(long).toString()}) on a row of ${length} bytes` };
    if (inline.subarray(length).some((b) => b !== 0)) return { layout: 'inline padding not zero' };
    bytes = inline.subarray(0, length);
  }
  try {
    return utf8.decode(bytes);
  } catch {
    return { layout: `not UTF-8: ${Buffer.from(bytes).toString('hex')}` };
  }
}

/** Row `row` of column `f`, read from the buffers as DuckDB would. */
function cellOf(reader: CanonicalEventReader, f: number, row: number): Cell {
  const column = reader.columns[f]!;
  const view = new DataView(column.data);
  const nul = column.nulls[row];
  if (nul !== 0 && nul !== 1) return { layout: `null flag ${nul}` };
  if (nul === 1) return column.type === 'VARCHAR' && column.longStrings.has(row) ? { layout: 'a stale long string on a NULL row' } : null;
  switch (column.type) {
    case 'VARCHAR':
      return stringCell(column, row);
    case 'BOOLEAN': {
      const byte = view.getUint8(row);
      return byte === 0 ? false : byte === 1 ? true : { layout: `boolean byte ${byte}` };
    }
    case 'INTEGER':
      return view.getInt32(row * 4, true);
    case 'DATE':
      return view.getInt32(row * 4, true);
    case 'BIGINT':
      return view.getBigInt64(row * 8, true);
    case 'TIMESTAMP':
      return view.getBigInt64(row * 8, true);
    case 'DOUBLE':
      return view.getFloat64(row * 8, true);
  }
}

/** createEventDecoder's value as the cell should hold it (-0 kept for DOUBLE: toEqual tells it from 0). */
function expectedCell(type: FieldType, value: FieldValue): Cell {
  if (value === null) return null;
  switch (type) {
    case 'TIMESTAMP':
      return BigInt(value as number) * 1000n;
    case 'DATE':
      return Date.parse(`${value as string}T00:00:00Z`) / MS_PER_DAY;
    case 'INTEGER':
      // An int32 has no -0 (JSON.parse gives -0 for "-0").
      return (value as number) === 0 ? 0 : value;
    default:
      return value;
  }
}

const rowOf = (reader: CanonicalEventReader, row: number) => reader.columns.map((_, f) => cellOf(reader, f, row));

/** Asserts that row `row` holds `values` (createEventDecoder's), and its event time. */
function expectRow(reader: CanonicalEventReader, row: number, input: string, values: readonly FieldValue[], timestampMs: number): void {
  expect({ input, cells: rowOf(reader, row), timestampMs: reader.timestampsMs[row] }).toEqual({
    input,
    cells: values.map((v, f) => expectedCell(reader.columns[f]!.type, v)),
    timestampMs,
  });
}

/** Fills row `row` with garbage, as earlier reads (good or declined) may have left it. */
function dirty(reader: CanonicalEventReader, row: number, seed: number): void {
  const random = seededRandom(seed);
  const next = () => Math.floor(random() * 256);
  for (const column of reader.columns) {
    const width = column.data.byteLength / reader.capacity;
    new Uint8Array(column.data, row * width, width).forEach((_, k, bytes) => (bytes[k] = next()));
    column.nulls[row] = next() & 1;
    if (column.type === 'VARCHAR' && next() & 1) column.longStrings.set(row, new TextEncoder().encode('a stale long string'));
  }
  reader.timestampsMs[row] = next();
}

/**
 * Reads `framed` into row `row` (dirtied first when `seed` is given); when the reader takes it,
 * asserts that createEventDecoder accepts it and that the row holds its values, and returns them.
 */
function readAndCheck(reader: CanonicalEventReader, { buffer, start, end }: Framed, row: number, seed?: number, decodeWith = decode): FieldValue[] | undefined {
  if (seed !== undefined) dirty(reader, row, seed);
  if (!reader.read(buffer, start, end, row)) return undefined;
  const record = buffer.subarray(start, end);
  const input = record.toString('utf8');
  const reference = decodeWith(Buffer.from(record));
  expect({ input, ok: reference.ok, reason: reference.ok ? undefined : reference.message }).toEqual({ input, ok: true, reason: undefined });
  if (!reference.ok) return undefined;
  expectRow(reader, row, input, reference.event.values, reference.event.timestampMs);
  return reference.event.values;
}

/**
 * A record in a larger buffer, as the caller passes it: bytes before and after that would
 * continue a value or close the object if the reader looked past `end`.
 */
interface Framed {
  readonly buffer: Buffer;
  readonly start: number;
  readonly end: number;
}

// ---------------------------------------------------------------------------------------------
// Inputs on the edges (after json-decode-sql.property.test.ts, with more on what this reader parses).
// ---------------------------------------------------------------------------------------------

const digitText = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength });
/** Numbers in JSON's grammar with any count of digits and any exponent: both of the reader's ways to a value. */
const grammarNumberText = fc
  .tuple(
    fc.constantFrom('', '-'),
    fc.oneof(fc.constant('0'), fc.tuple(fc.constantFrom(...'123456789'), digitText(0, 22)).map(([a, b]) => a + b)),
    fc.option(digitText(1, 26), { nil: undefined }),
    fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.oneof(fc.integer({ min: 0, max: 30 }).map(String), digitText(1, 5))), { nil: undefined }),
  )
  .map(([sign, int, frac, exp]) => `${sign}${int}${frac === undefined ? '' : `.${frac}`}${exp === undefined ? '' : exp.join('')}`);
/** Numbers at the end of the reader's exact way: 1 to 17 significant digits (some near 2^53 and 10^15), exponents near ±22. */
const boundaryNumberText = fc
  .tuple(
    fc.oneof(
      fc.integer({ min: 1, max: 17 }).chain((length) => fc.bigInt({ min: 10n ** BigInt(length - 1), max: 10n ** BigInt(length) - 1n })),
      fc.bigInt({ min: 2n ** 53n - 1000n, max: 2n ** 53n + 1000n }),
      fc.constantFrom(2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 10n ** 15n - 1n, 10n ** 15n, 10n ** 15n + 1n),
    ),
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 17 })),
    fc.oneof(fc.constant(undefined), fc.integer({ min: -26, max: 26 }), fc.constantFrom(-24, -23, -22, -21, 21, 22, 23, 24)),
    fc.constantFrom('', '-'),
  )
  .map(([m, point, exp, sign]) => {
    const digits = String(m);
    const k = Math.min(point, digits.length - 1);
    const body = k === 0 ? digits : `${digits.slice(0, digits.length - k)}.${digits.slice(digits.length - k)}`;
    return `${sign}${body}${exp === undefined ? '' : `e${exp}`}`;
  });
const numberText = fc.oneof(
  fc.integer().map(String),
  boundaryNumberText,
  fc.integer({ min: -5, max: 5 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
  fc.double({ min: 0, max: 1, noNaN: true }).map((v) => JSON.stringify(v)),
  fc.maxSafeInteger().map(String),
  grammarNumberText,
  fc.constantFrom(
    '1.0', '-0', '-0.0', '0e400', '-0e-5', '1e3', '1E+2', '2.5e-3', '1e400', '-1e400', '1e-400', '-1e-400', '5e-324', '1.7976931348623157e308',
    '2147483647', '2147483648', '-2147483648', '-2147483649', '2147483647.0', '2147483647.5', '21474836.47e2', '-2.147483648e9',
    '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993', '9223372036854775807', '18446744073709551616',
    '123456789012345678901234567890', '1704067200000', '1704067200000.7', '1.7040672e12', '253402300799999', '253402300799999.5',
    '253402300800000', '0.1', '0.30000000000000004', '123456789012345', '1234567890123456', '999999999999999e22', '999999999999999e23',
    '1e22', '1e23', '4.35e-22', '1.5e-23', '0.0000000000000000000001', '1e00000000000000000000005', '100000000000000000000000',
    // Not JSON's grammar.
    '01', '00', '-01', '-', '--1', '+1', '.5', '1.', '1.e5', '1e', '1e+', '1E-', '0x10', '1_000', 'Infinity', '-Infinity', 'NaN', '1 ',
    `1${'0'.repeat(70)}`, `0.${'0'.repeat(70)}1`,
  ),
);

/** `text` with one character replaced: a valid time or date becomes a nearly valid one. */
const mutated = (texts: fc.Arbitrary<string>, chars: string) =>
  fc.tuple(texts, fc.nat(), fc.constantFrom(...chars)).map(([t, at, c]) => {
    const k = 1 + (at % Math.max(1, t.length - 2));
    return `${t.slice(0, k)}${c}${t.slice(k + 1)}`;
  });
const anyMsText = fc.integer({ min: -62_198_755_200_000 /* year 0 */, max: MAX_MS + 10 * MS_PER_DAY }).map((ms) => JSON.stringify(new Date(ms).toISOString()));
const isoTimeText = fc.integer({ min: 0, max: MAX_MS }).map((ms) => JSON.stringify(new Date(ms).toISOString()));
const timeText = fc.oneof(
  fc.integer({ min: 0, max: MAX_MS }).map(String),
  isoTimeText,
  anyMsText,
  mutated(isoTimeText, '0123456789-:.TZz +/'),
  fc.tuple(fc.integer({ min: 1960, max: 10_000 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 })).map(
    ([y, mo, d, h, mi]) => `"${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:59.999Z"`,
  ),
  fc.constantFrom(
    '"2024-01-01T00:00:00Z"', '"2024-01-01T00:00:00"', '"2024-01-01T00:00:00.1Z"', '"2024-01-01T00:00:00.123456Z"',
    '"2024-01-01T00:00:00.9999999Z"', '"2024-01-01T23:59:59.999999999Z"', '"2024-01-01 10:00:00"', '"2024-01-01T10:00Z"',
    '"2024-01-01"', '"2024-01-01T10:00:00+02:00"', '"2024-01-01T10:00:00-0530"', '"2024-01-01T10:00:00z"', '"2024-01-01T10:00:00.000z"',
    '"2024-02-30T00:00:00.000Z"', '"2023-02-29T00:00:00.000Z"', '"2024-02-29T00:00:00.000Z"', '"2100-02-29T00:00:00.000Z"', '"2000-02-29T00:00:00.000Z"',
    '"2024-01-01T24:00:00.000Z"', '"2024-01-01T23:60:00.000Z"', '"2024-01-01T23:59:60.000Z"', '"2024-04-31T00:00:00.000Z"', '"2024-00-10T00:00:00.000Z"',
    '"2024-01-00T00:00:00.000Z"', '"1969-12-31T23:59:59.999Z"', '"1970-01-01T00:00:00.000Z"', '"9999-12-31T23:59:59.999Z"',
    '"+010000-01-01T00:00:00.000Z"', '"0000-01-01T00:00:00.000Z"', '" 2024-01-01T00:00:00.000Z"', '"2024-01-01T00:00:00.000Z "',
    '"2024-01-01T00:00:00.000Z', '"March 7"', '"2024-13-01T00:00:00.000Z"', '"2024-1-01T00:00:00.000Z"', '"2024-01-01T00:00:00.00Z"',
    '"2024-01-01T00:00:00.0000Z"', '"2024-01-01t00:00:00.000Z"', '"２０２４-01-01T00:00:00.000Z"', '"2024-01-01T00:00:00.000\\u005a"',
    'null', 'nul', '0', '-0', '0.5', '-1', '-0.5', '1e3', '1704067200000', '1704067200000.999', '253402300799999', '253402300799999.9', '253402300800000', '5e-324', '1e400',
  ),
);
const validDateText = fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T00:00:00Z'), noInvalidDate: true }).map((v) => JSON.stringify(v.toISOString().slice(0, 10)));
const dateText = fc.oneof(
  validDateText,
  fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 })).map(
    ([y, m, d]) => `"${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}"`,
  ),
  mutated(fc.constantFrom('"2024-02-29"', '"0001-01-01"', '"1970-01-01"', '"9999-12-31"'), '0123456789-/ T:'),
  fc.constantFrom(
    '"2024-02-29"', '"2024-02-30"', '"2023-02-29"', '"1900-02-29"', '"2000-02-29"', '"0004-02-29"', '"0100-02-29"', '"0400-02-29"', '"0000-01-01"',
    '"0001-01-01"', '"9999-12-31"', '"2024-13-01"', '"2024-00-01"', '"2024-01-00"', '"2024-1-01"', '"12024-01-01"', '"-0001-01-01"',
    '"2024-01-01T00:00:00Z"', '"2024-01-01 "', '"2024-01-01', '"2024/01/01"', '20240101', '"２０２４-01-01"',
  ),
);
const rawUnit = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 4, arbitrary: fc.constantFrom('a', 'é', '€', '😀', '\u2028', '\u007f', '\u0080', '\ufeff', '\uffff', ' ', ',', ':', '}', '{') },
  { weight: 1, arbitrary: fc.constantFrom('"', '\\', '\\n', '\\"', '\\u0041', '\u0000', '\u0001', '\t', '\n', '\u001f') },
);
const stringText = fc.oneof(
  fc.string().map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary' }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', minLength: 10, maxLength: 14 }).map((s) => JSON.stringify(s)),
  // Unescaped: raw control characters, quotes and backslashes where JSON.stringify would escape them.
  fc.string({ unit: rawUnit, maxLength: 16 }).map((s) => `"${s}"`),
  fc.constantFrom(
    '"a\\"b"', '"\\u00e9t\\u00e9"', '"tab\\there"', '"\\ud83d\\ude00"', '"\\ud800"', '"x\\u0000y"', '"line\\nbreak"', '"a\\/b"', '""', '"NaN"', '"inf"',
    '"2024-01-01"', '"abcdefghijkl"', '"abcdefghijklm"', '"éééééé"', '"éééééée"', '"aéééééé"', '"😀😀😀"', '"😀😀😀a"', '"a😀😀😀"', '"12345678901\\u0041"',
    '"null"', 'null', 'nul', 'nulll', 'true', '"a', 'a"',
  ),
);
const bigintText = fc.oneof(
  numberText,
  fc.bigInt({ min: -(10n ** 17n), max: 10n ** 17n }).map((v) => `"${v}"`),
  // Any count of digits, and around 2^53 and 10^15, where a string's digits stop being exact in a double.
  fc.tuple(fc.integer({ min: 1, max: 20 }), fc.boolean())
    .chain(([length, negative]) => fc.bigInt({ min: 10n ** BigInt(length - 1), max: 10n ** BigInt(length) - 1n }).map((v) => (negative ? -v : v)))
    .map((v) => `"${v}"`),
  fc.tuple(fc.constantFrom(2n ** 53n, 10n ** 15n, 10n ** 16n, 2n ** 63n), fc.integer({ min: -50, max: 50 }), fc.boolean()).map(([base, delta, negative]) => {
    const v = base + BigInt(delta);
    return negative ? `"-${v}"` : `"${v}"`;
  }),
  fc.tuple(fc.constantFrom(2 ** 53, 10 ** 15), fc.integer({ min: -50, max: 50 }), fc.constantFrom('', '-')).map(([base, delta, sign]) => `${sign}${BigInt(base) + BigInt(delta)}`),
  fc.tuple(fc.constantFrom('', '-', '+', ' '), digitText(0, 20)).map(([s, d]) => `"${s}${d}"`),
  fc.constantFrom('"-0"', '"007"', '"-007"', '"123456789012345"', '"-123456789012345"', '"1234567890123456"', '"9223372036854775807"', '"9223372036854775808"', '"-9223372036854775808"', '"-"', '""', '"1.5"', '"1e3"', '"1 "'),
);
const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: numberText },
  { weight: 3, arbitrary: timeText },
  { weight: 3, arbitrary: stringText },
  { weight: 1, arbitrary: dateText },
  { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null', 'True', 'tru', 'truee', 'fals', 'nul', 'NULL', '[]', '{}', '[1,2]', '{"a":1}', 'NaN', '-Infinity', 'nan', 'inf', '"true"', '1', '0') },
);

/** Per field: values of its type (on its edges) and, now and then, anything. */
const edgeText: Record<string, fc.Arbitrary<string>> = {
  ts: timeText,
  s: stringText,
  b: fc.constantFrom('true', 'false', 'null', '"true"', '1', '0', 'tru', 'True'),
  i: fc.oneof(
    numberText,
    fc.constantFrom('2147483647', '2147483648', '-2147483648', '-2147483649', '2147483647.0', '2147483647.5', '2.147483647e9', '2.147483648e9', '-2.147483648e9', '-0', '1e2', '1.5', '1e-1', '4294967296', '-4294967296'),
  ),
  n: bigintText,
  x: numberText,
  d: dateText,
  t2: timeText,
};
const plainString = fc.string({ unit: 'binary', maxLength: 20 }).map((s) => s.replace(/["\\\u0000-\u001f]/g, ''));
const fittingText: Record<string, fc.Arbitrary<string>> = {
  ts: fc.oneof(isoTimeText, fc.integer({ min: 0, max: MAX_MS }).map(String)),
  s: fc.oneof({ weight: 3, arbitrary: plainString.map((v) => JSON.stringify(v)) }, { weight: 1, arbitrary: fc.constant('null') }),
  b: fc.constantFrom('true', 'false', 'null'),
  i: fc.oneof(fc.integer().map(String), fc.constant('null')),
  n: fc.oneof(fc.maxSafeInteger().map(String), fc.integer({ min: -(10 ** 15) + 1, max: 10 ** 15 - 1 }).map((v) => `"${v}"`), fc.constant('null')),
  x: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)), fc.constant('null')),
  d: fc.oneof(validDateText, fc.constant('null')),
  t2: fc.oneof(isoTimeText, fc.integer({ min: 0, max: MAX_MS }).map(String), fc.constant('null')),
};
const names = schema.fields.map((f) => f.name);

const shape = (values: readonly string[]) => `{${names.map((name, i) => `${JSON.stringify(name)}:${values[i]}`).join(',')}}`;
/** The fields in schema order, compact, each value mostly fitting and sometimes on an edge or anything. */
const canonicalShapeText: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(...names.map((name) => fc.oneof({ weight: 24, arbitrary: fittingText[name]! }, { weight: 4, arbitrary: edgeText[name]! }, { weight: 1, arbitrary: valueText }))).map(shape),
  // One value on an edge, the others fitting: that value decides.
  fc.tuple(fc.tuple(...names.map((name) => fittingText[name]!)), fc.nat({ max: names.length - 1 }), fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }))
    .chain(([values, k, edge]) => (edge ? edgeText[names[k]!]! : valueText).map((v) => values.map((old, i) => (i === k ? v : old))))
    .map(shape),
);

const keyText = (name: string) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.constant(JSON.stringify(name)) },
    { weight: 1, arbitrary: fc.constant(`"\\u${name.charCodeAt(0).toString(16).padStart(4, '0')}${name.slice(1)}"`) },
    { weight: 1, arbitrary: fc.constantFrom(JSON.stringify(name.toUpperCase()), JSON.stringify(`${name} `), `'${name}'`, name) },
  );
const separator = fc.constantFrom(':', ':', ':', ' : ', ':\n', ' :');
const memberText = (name: string) =>
  fc
    .tuple(keyText(name), separator, fc.oneof({ weight: 8, arbitrary: fittingText[name] ?? valueText }, { weight: 2, arbitrary: edgeText[name] ?? valueText }, { weight: 1, arbitrary: valueText }))
    .map(([key, sep, value]) => `${key}${sep}${value}`);

/** Objects with absent, repeated, reordered or extra keys, whitespace, trailing commas. */
const objectText: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(fc.constant(names), fc.shuffledSubarray(names, { minLength: names.length - 2 })),
    fc.oneof(fc.constant([]), fc.array(fc.constantFrom(...names, 'extra', 'TS', 'nested'), { maxLength: 2 })),
    fc.constantFrom('', '', '', '', '', '', ',', ' ,', ', '),
    fc.constantFrom(',', ',', ',', ', ', ' ,'),
  )
  .chain(([fieldNames, more, trailing, comma]) => fc.tuple(fc.tuple(...[...fieldNames, ...more].map(memberText)), fc.constant(trailing), fc.constant(comma)))
  .map(([members, trailing, comma]) => `{${members.join(comma)}${members.length > 0 ? trailing : ''}}`);

/** The canonical shape with one thing spliced in: a trailing comma, a repeated or escaped key, NaN elsewhere, whitespace. */
const splicedText: fc.Arbitrary<string> = fc
  .tuple(
    fc.tuple(...names.map((name) => fc.oneof({ weight: 12, arbitrary: fittingText[name]! }, { weight: 1, arbitrary: edgeText[name]! }))),
    fc.constantFrom(
      ',', ' ,', ',\n', ',"ts":0', ',"s":"x"', ',"s":"a long string here"', ',"x":1', ',"\\u0074s":0', ',"extra":NaN', ',"extra":-Infinity', ',"extra":[1,]',
      ',"extra":{"a":1,}', ',"extra":inf', '/* c */', ',"extra":1 // c', ",'extra':1", ' ', '\n', ',"extra":[NaN]', ',"extra":1', ',"":1', ',"ts":null',
    ),
    fc.nat(),
  )
  .map(([values, splice, at]) => {
    const members = names.map((name, i) => `${JSON.stringify(name)}:${values[i]}`);
    const position = at % 3 === 0 ? at % members.length : members.length;
    const before = members.slice(0, position).join(',');
    const after = members.slice(position).join(',');
    return `{${before}${splice}${after ? `${before ? ',' : ''}${after}` : ''}}`;
  });

/** A text with one character inserted, deleted or replaced anywhere. */
const charEdited = fc.tuple(canonicalShapeText, fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.constantFrom(...' ,:"{}[]0-.eE\\nul\n\tTZ\u00e9')).map(
  ([text, at, edit, c]) => {
    const k = at % (text.length + 1);
    if (edit === 'insert') return `${text.slice(0, k)}${c}${text.slice(k)}`;
    if (edit === 'delete') return `${text.slice(0, k)}${text.slice(k + 1)}`;
    return `${text.slice(0, k)}${c}${text.slice(k + 1)}`;
  },
);

const recordText: fc.Arbitrary<string> = fc.oneof(
  { weight: 10, arbitrary: canonicalShapeText },
  { weight: 3, arbitrary: splicedText },
  { weight: 3, arbitrary: charEdited },
  { weight: 3, arbitrary: objectText },
  { weight: 1, arbitrary: fc.tuple(canonicalShapeText, fc.nat()).map(([t, cut]) => t.slice(0, cut % (t.length + 1))) },
  { weight: 1, arbitrary: fc.tuple(canonicalShapeText, fc.constantFrom(' ', '\uFEFF', '\n', 'x', ']', '\u0000', '{')).map(([t, extra]) => `${extra}${t}`) },
  { weight: 1, arbitrary: fc.tuple(canonicalShapeText, fc.constantFrom(' ', '\n', 'x', ']', '\u0000', '}', ',')).map(([t, extra]) => `${t}${extra}`) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string() },
);

const before = fc.constantFrom('', '', ' ', '{', '}', 'x', ',"a":1}', '\n', '\u0000', '{"ts":0,');
const after = fc.constantFrom('', '', '}', '0}', '1}', ' ', '"}', '""}', 'ull}', 'rue}', 'e5}', '.5}', '0', '"', 'Z"}', '000000000"}', ',"extra":1}', '\u0000', '\n');
const frame = (record: fc.Arbitrary<string>) =>
  fc.tuple(before, record, after).map(([b, r, a]): Framed => {
    const start = Buffer.byteLength(b);
    return { buffer: Buffer.from(`${b}${r}${a}`), start, end: start + Buffer.byteLength(r) };
  });
/** Records as bytes (sometimes with a byte that is not UTF-8, filtered out: the caller passes UTF-8 only). */
const framedRecord: fc.Arbitrary<Framed> = fc
  .oneof(
    { weight: 12, arbitrary: frame(recordText) },
    {
      weight: 1,
      arbitrary: fc.tuple(canonicalShapeText, fc.nat(), fc.integer({ min: 0x80, max: 0xff })).map(([t, at, byte]): Framed => {
        const bytes = Buffer.from(t);
        bytes[at % bytes.length] = byte;
        return { buffer: bytes, start: 0, end: bytes.length };
      }),
    },
  )
  .filter((f) => isUtf8(f.buffer.subarray(f.start, f.end)));

// ---------------------------------------------------------------------------------------------
// Events in the canonical form, all of which the reader must take.
// ---------------------------------------------------------------------------------------------

/** Strings JSON.stringify writes without escapes: any code point but controls, quote and backslash. */
const unescapedString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: fc.constantFrom('a', 'é', '€', '😀', '\u2028', '\u007f', ' ', ',', '}', ':', '/', 'n'), maxLength: 16 }),
).map((s) => s.replace(/["\\\u0000-\u001f]/g, ''));
const msNumber = fc.oneof(fc.integer({ min: 0, max: MAX_MS }), fc.double({ min: 0, max: MAX_MS, noNaN: true }), fc.constantFrom(0, MAX_MS, 5e-324, 0.5, MAX_MS - 0.5));
const isoTime = fc.integer({ min: 0, max: MAX_MS }).map((ms) => new Date(ms).toISOString());
const canonicalEvent = fc.record({
  ts: fc.oneof(isoTime, msNumber),
  s: fc.option(unescapedString, { nil: null }),
  b: fc.option(fc.boolean(), { nil: null }),
  i: fc.option(fc.integer(), { nil: null }),
  n: fc.option(fc.oneof(fc.maxSafeInteger(), fc.integer({ min: -(10 ** 15) + 1, max: 10 ** 15 - 1 }).map(String), fc.bigInt({ min: -(10n ** 15n) + 1n, max: 10n ** 15n - 1n }).map(String)), { nil: null }),
  x: fc.option(
    fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      // Decimals of every magnitude: JSON.stringify writes them with from 1 to 17 digits and any exponent.
      fc.tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 31 }), fc.integer({ min: -340, max: 310 })).map(([m, e]) => Number(`${m}e${e}`)).filter(Number.isFinite),
      fc.tuple(fc.double({ min: 1, max: 10, noNaN: true }), fc.integer({ min: -30, max: 30 })).map(([m, e]) => Number(`${m}e${e}`)),
    ),
    { nil: null },
  ),
  d: fc.option(fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }).map((v) => v.toISOString().slice(0, 10)), { nil: null }),
  t2: fc.option(fc.oneof(isoTime, msNumber), { nil: null }),
});

/** A canonical event whose string is long, then a later field that createEventDecoder rejects. */
const BAD_LATER: Record<string, readonly string[]> = {
  b: ['1', '"true"', 'tru'],
  i: ['2147483648', '1.5', '"1"'],
  n: ['1.5', '9007199254740993', '"1.5"', '"x"'],
  x: ['1e400', '"1"', 'NaN'],
  d: ['"2024-02-30"', '"2024-13-01"', '1'],
  t2: ['"1969-12-31T23:59:59.999Z"', '-1', '"2024-02-30T00:00:00.000Z"', '253402300800000', 'true'],
};
const longThenBadText = fc
  .tuple(canonicalEvent, unescapedString.filter((s) => Buffer.byteLength(s) > INLINE_BYTES), fc.constantFrom(...Object.keys(BAD_LATER)), fc.nat())
  .map(([event, long, field, k]) => {
    const values = names.map((name) => (name === 's' ? JSON.stringify(long) : name === field ? BAD_LATER[field]![k % BAD_LATER[field]!.length]! : JSON.stringify(event[name as keyof typeof event])));
    return `{${names.map((name, i) => `${JSON.stringify(name)}:${values[i]}`).join(',')}}`;
  });

// ---------------------------------------------------------------------------------------------

describe('CanonicalEventReader', () => {
  it('reads a record only when createEventDecoder accepts it, into exactly its values', () => {
    const capacity = 8;
    // One reader for all runs: rows hold what earlier runs (read or declined) left.
    const reader = new CanonicalEventReader(schema, capacity);
    let records = 0;
    let read = 0;
    const seen = { long: 0, nullString: 0, isoTs: 0, numberTs: 0, bigintString: 0, slowNumber: 0 };
    fc.assert(
      fc.property(fc.array(fc.tuple(framedRecord, fc.nat({ max: capacity - 1 }), fc.option(fc.integer(), { nil: undefined })), { minLength: 1, maxLength: 8 }), (inputs) => {
        for (const [framed, row, seed] of inputs) {
          records++;
          const values = readAndCheck(reader, framed, row, seed);
          if (!values) continue;
          read++;
          const input = framed.buffer.subarray(framed.start, framed.end).toString();
          const [ts, s, , , , x] = values;
          if (typeof s === 'string' && Buffer.byteLength(s) > INLINE_BYTES) seen.long++;
          if (s === null) seen.nullString++;
          if (/^\{"ts":"/.test(input)) seen.isoTs++;
          else if (typeof ts === 'number') seen.numberTs++;
          if (/"n":"/.test(input)) seen.bigintString++;
          if (x !== null && /"x":-?\d{16}|"x":[^,]*[eE]-?\d{3}/.test(input)) seen.slowNumber++;
        }
      }),
      runs(6000),
    );
    // The inputs are built to sit on the edges, but many must still be read, of every kind.
    expect(read / records).toBeGreaterThan(0.2);
    for (const [kind, count] of Object.entries(seen)) expect({ kind, enough: count > 50 }).toEqual({ kind, enough: true });
  });

  it('reads numbers as JSON.parse does, and only those createEventDecoder takes for the field', () => {
    const reader = new CanonicalEventReader(schema, 2);
    const numeric = ['ts', 'i', 'n', 'x', 't2'];
    let read = 0;
    fc.assert(
      fc.property(
        fc.tuple(...names.map((name) => fittingText[name]!)),
        fc.constantFrom(...numeric),
        fc.oneof({ weight: 2, arbitrary: boundaryNumberText }, { weight: 1, arbitrary: grammarNumberText }, { weight: 1, arbitrary: numberText }),
        fc.nat({ max: 1 }),
        (values, field, number, row) => {
          const text = shape(values.map((v, i) => (names[i] === field ? number : v)));
          const buffer = Buffer.from(`${text}0.5e1}`);
          if (readAndCheck(reader, { buffer, start: 0, end: Buffer.byteLength(text) }, row)) read++;
        },
      ),
      runs(10000),
    );
    expect(read).toBeGreaterThan(2000);
  });

  it('reads every event of the schema as JSON.stringify writes it: fields in schema order, no escapes', () => {
    const reader = new CanonicalEventReader(schema, 4);
    fc.assert(
      fc.property(canonicalEvent, fc.nat({ max: 3 }), fc.option(fc.integer(), { nil: undefined }), (event, row, seed) => {
        const input = JSON.stringify(event);
        expect(input).not.toContain('\\');
        if (seed !== undefined) dirty(reader, row, seed);
        const bytes = Buffer.from(input);
        expect({ input, read: reader.read(bytes, 0, bytes.length, row) }).toEqual({ input, read: true });
        const reference = decode(bytes);
        expect(reference.ok).toBe(true);
        if (reference.ok) expectRow(reader, row, input, reference.event.values, reference.event.timestampMs);
      }),
      runs(10000),
    );
  });

  it('leaves in each row exactly the last record read into it, whatever was declined there before', () => {
    const capacity = 4;
    const reader = new CanonicalEventReader(schema, capacity);
    type Op = { kind: 'read'; row: number; framed: Framed; mustDecline: boolean } | { kind: 'flush' };
    const readOp = (texts: fc.Arbitrary<string>, mustDecline: boolean) =>
      fc.tuple(frame(texts), fc.nat({ max: capacity - 1 })).map(([framed, row]): Op => ({ kind: 'read', row, framed, mustDecline }));
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: readOp(canonicalEvent.map((e) => JSON.stringify(e)), false) },
      { weight: 4, arbitrary: readOp(longThenBadText, true) },
      { weight: 3, arbitrary: readOp(fc.oneof(canonicalShapeText, charEdited), false) },
      { weight: 1, arbitrary: fc.constant<Op>({ kind: 'flush' }) },
    );
    let checkedAfterDecline = 0;
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        reader.clearLongStrings();
        /** Per row: the record last read into it and createEventDecoder's event, or undefined after a decline. */
        const model: ({ input: string; values: FieldValue[]; timestampMs: number; afterDecline: boolean } | undefined)[] = new Array(capacity).fill(undefined);
        const declinedAt = new Set<number>();
        const check = () => {
          model.forEach((m, row) => {
            if (!m) return;
            expectRow(reader, row, m.input, m.values, m.timestampMs);
            if (m.afterDecline) checkedAfterDecline++;
          });
        };
        for (const o of ops) {
          if (o.kind === 'flush') {
            check();
            reader.clearLongStrings();
            model.fill(undefined);
            declinedAt.clear();
            continue;
          }
          const { buffer, start, end } = o.framed;
          if (!isUtf8(buffer.subarray(start, end))) continue;
          const ok = reader.read(buffer, start, end, o.row);
          const input = buffer.subarray(start, end).toString('utf8');
          if (o.mustDecline) expect({ input, ok }).toEqual({ input, ok: false });
          if (!ok) {
            model[o.row] = undefined;
            declinedAt.add(o.row);
            continue;
          }
          const reference = decode(Buffer.from(buffer.subarray(start, end)));
          expect({ input, ok: reference.ok }).toEqual({ input, ok: true });
          if (!reference.ok) return;
          model[o.row] = { input, values: reference.event.values, timestampMs: reference.event.timestampMs, afterDecline: declinedAt.has(o.row) };
          declinedAt.delete(o.row);
        }
        check();
      }),
      runs(2000),
    );
    expect(checkedAfterDecline).toBeGreaterThan(300);
  });

  it('reads the records of any schema soundly and completely (names, types and the timestamp field anywhere)', () => {
    const FIELD_TYPES: readonly FieldType[] = ['VARCHAR', 'BOOLEAN', 'INTEGER', 'BIGINT', 'DOUBLE', 'TIMESTAMP', 'DATE'];
    const fitting: Record<FieldType, fc.Arbitrary<string>> = {
      TIMESTAMP: fc.oneof(isoTimeText, msNumber.map((ms) => JSON.stringify(ms)), fc.constant('null')),
      VARCHAR: fittingText.s!,
      BOOLEAN: fittingText.b!,
      INTEGER: fittingText.i!,
      BIGINT: fittingText.n!,
      DOUBLE: fittingText.x!,
      DATE: fittingText.d!,
    };
    const edge: Record<FieldType, fc.Arbitrary<string>> = { TIMESTAMP: timeText, VARCHAR: stringText, BOOLEAN: edgeText.b!, INTEGER: edgeText.i!, BIGINT: bigintText, DOUBLE: numberText, DATE: dateText };
    const anySchema = fc
      .uniqueArray(fc.constantFrom('a', 'ab', 'b', 'A', '_', '__proto__', 'constructor', 'ts', 'event_time', 'x1', 'toString', 'n'), { minLength: 1, maxLength: 7 })
      .chain((fieldNames) => fc.tuple(fc.constant(fieldNames), fc.tuple(...fieldNames.map(() => fc.constantFrom(...FIELD_TYPES))), fc.nat({ max: fieldNames.length - 1 })))
      .map(([fieldNames, types, k]): EventSchema => ({
        timestampField: fieldNames[k]!,
        fields: fieldNames.map((name, i) => ({ name, type: i === k ? 'TIMESTAMP' : types[i]! })),
      }));
    let read = 0;
    fc.assert(
      fc.property(
        anySchema.chain((anyOf) => {
          const record = fc
            .tuple(
              fc.tuple(
                ...anyOf.fields.map((f) =>
                  fc.oneof(
                    { weight: 8, arbitrary: (f.name === anyOf.timestampField ? fc.oneof(isoTimeText, msNumber.map(String)) : fitting[f.type]).map((text) => ({ text, fits: true })) },
                    { weight: 1, arbitrary: fc.oneof(edge[f.type], valueText).map((text) => ({ text, fits: false })) },
                  ),
                ),
              ),
              fc.nat({ max: 3 }),
              fc.option(fc.integer(), { nil: undefined }),
            )
            .map(([values, row, seed]) => ({
              text: `{${anyOf.fields.map((f, i) => `${JSON.stringify(f.name)}:${values[i]!.text}`).join(',')}}`,
              // Every value as JSON.stringify writes one the schema takes: the reader must take the record.
              canonical: values.every((v) => v.fits),
              row,
              seed,
            }));
          return fc.tuple(fc.constant(anyOf), fc.array(record, { minLength: 1, maxLength: 12 }));
        }),
        ([anyOf, records]) => {
          const reader = new CanonicalEventReader(anyOf, 4);
          const decodeAny = createEventDecoder(anyOf);
          for (const { text, canonical, row, seed } of records) {
            const buffer = Buffer.from(`${text}0}`);
            if (!isUtf8(buffer)) continue;
            const end = buffer.length - 2;
            const values = readAndCheck(reader, { buffer, start: 0, end }, row, seed, decodeAny);
            if (values) read++;
            // All values fitting, as JSON.stringify writes them: the canonical form, which must be read.
            if (canonical) expect({ text, read: values !== undefined }).toEqual({ text, read: true });
          }
        },
      ),
      runs(3000),
    );
    expect(read).toBeGreaterThan(2000);
  });

  it('reads the edge cases that matter by hand', () => {
    const reader = new CanonicalEventReader(schema, 2);
    const long = 'a string longer than twelve bytes';
    const good = (s: string | null) => `{"ts":"2024-01-01T00:00:00.000Z","s":${JSON.stringify(s)},"b":true,"i":-0,"n":"-007","x":-0,"d":"0001-01-01","t2":1704067200000.9}`;
    const read = (text: string, row: number) => {
      const bytes = Buffer.from(text);
      return reader.read(bytes, 0, bytes.length, row);
    };
    expect(read(`{"ts":0,"s":${JSON.stringify(long)},"b":true,"i":1,"n":1,"x":1,"d":"2024-02-30","t2":null}`, 1)).toBe(false);
    expect(reader.columns[1]!.longStrings.has(1)).toBe(true);
    for (const s of ['short', null, '', 'twelve bytes', 'éééééé']) {
      expect(read(`{"ts":0,"s":${JSON.stringify(long)},"b":true,"i":1,"n":1,"x":1,"d":"2024-02-30","t2":null}`, 1)).toBe(false);
      const text = good(s);
      expect(read(text, 1)).toBe(true);
      const reference = decode(text);
      if (!reference.ok) throw new Error(reference.message);
      expectRow(reader, 1, text, reference.event.values, reference.event.timestampMs);
    }
    // -0 stays -0 in a DOUBLE, as JSON.parse reads it.
    expect(Object.is(new DataView(reader.columns[5]!.data).getFloat64(8, true), -0)).toBe(true);
    // Year 1 is 719162 days before 1970.
    expect(new DataView(reader.columns[6]!.data).getInt32(4, true)).toBe(-719_162);
  });
});
