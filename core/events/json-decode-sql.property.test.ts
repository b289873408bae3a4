import { DuckDBDateValue, DuckDBTimestampValue, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inMemoryDuckDb } from '../../test/harness/in-memory-duckdb.ts';
import type { EventSchema } from '../views/view-definition.ts';
import { createEventDecoder, type FieldValue } from './decode-event.ts';
import { canonicalLaneSql } from './canonical-lane-sql.ts';
import { jsonDecodeSql } from './json-decode-sql.ts';
import { ALL_FIELD_TYPES } from '../../test/fixtures/all-field-types.ts';

/**
 * The SQL decoder's contract: a row it marks `_fast` is one `createEventDecoder` accepts, with
 * the very same values. Inputs are built to sit on the edges where DuckDB's JSON reader and
 * JSON.parse differ (leniencies, duplicate keys, number forms, time formats, encodings).
 */
const schema: EventSchema = ALL_FIELD_TYPES;
const decode = createEventDecoder(schema);

/** JSON texts of numbers, written as producers write them (not all as JSON.stringify would). */
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.integer({ min: -5, max: 5 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '1.0', '-0', '-0.0', '1e3', '1E+2', '2.5e-3', '1e400', '-1e400', '2147483647', '2147483648', '-2147483648', '-2147483649',
    '9007199254740991', '9007199254740992', '-9007199254740993', '9223372036854775807', '18446744073709551616',
    '123456789012345678901234567890', '1704067200000', '1704067200000.7', '253402300799999', '253402300800000', '0.1',
  ),
);
const timeText = fc.oneof(
  fc.integer({ min: 0, max: 4_102_444_800_000 }).map(String),
  fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => JSON.stringify(new Date(ms).toISOString())),
  fc.constantFrom(
    '"2024-01-01T00:00:00Z"', '"2024-01-01T00:00:00"', '"2024-01-01T00:00:00.1Z"', '"2024-01-01T00:00:00.123456Z"',
    '"2024-01-01T00:00:00.9999999Z"', '"2024-01-01T23:59:59.999999999Z"', '"2024-01-01 10:00:00"', '"2024-01-01T10:00Z"',
    '"2024-01-01"', '"2024-01-01T10:00:00+02:00"', '"2024-01-01T10:00:00-0530"', '"2024-01-01T10:00:00z"',
    '"2024-02-30T00:00:00Z"', '"2023-02-29T00:00:00Z"', '"2024-02-29T00:00:00Z"', '"2024-01-01T24:00:00Z"',
    '"2024-01-01T23:59:60Z"', '"1969-12-31T23:59:59.999Z"', '"1970-01-01T00:00:00.000Z"', '"9999-12-31T23:59:59.999Z"',
    '"0000-01-01T00:00:00Z"', '" 2024-01-01T00:00:00Z"', '"March 7"', '"2024-13-01T00:00:00Z"',
  ),
);
const stringText = fc.oneof(
  fc.string().map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary' }).map((s) => JSON.stringify(s)),
  fc.constantFrom('"a\\"b"', '"\\u00e9t\\u00e9"', '"tab\\there"', '"\\ud83d\\ude00"', '"\\ud800"', '"x\\u0000y"', '"line\\nbreak"', '"a\\/b"', '""', '"NaN"', '"inf"', '"2024-01-01"'),
);
const valueText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: numberText },
  { weight: 3, arbitrary: timeText },
  { weight: 3, arbitrary: stringText },
  { weight: 1, arbitrary: fc.constantFrom('true', 'false', 'null', '[]', '{}', '[1,2]', '{"a":1}', 'NaN', '-Infinity', 'nan', 'inf') },
  { weight: 1, arbitrary: fc.constantFrom('"2024-02-29"', '"2024-02-30"', '"2023-02-29"', '"0000-01-01"', '"2024-1-01"', '"12024-01-01"') },
);

/** Values that suit the field's type, so that most records are good and the values get compared. */
const plainTimeText = fc.oneof(
  fc.integer({ min: 0, max: 4_102_444_800_000 }).map(String),
  fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => JSON.stringify(new Date(ms).toISOString())),
  fc.tuple(fc.integer({ min: 0, max: 4_102_444_800 }), fc.integer({ min: 0, max: 999_999 }), fc.constantFrom('', 'Z')).map(
    ([s, us, z]) => `"${new Date(s * 1000).toISOString().slice(0, 19)}.${String(us).padStart(6, '0')}${z}"`,
  ),
);
const fittingText: Record<string, fc.Arbitrary<string>> = {
  ts: fc.oneof({ weight: 4, arbitrary: plainTimeText }, { weight: 1, arbitrary: timeText }),
  s: fc.oneof({ weight: 4, arbitrary: fc.string().map((v) => JSON.stringify(v)) }, { weight: 1, arbitrary: stringText }),
  b: fc.constantFrom('true', 'false'),
  i: fc.integer().map(String),
  n: fc.oneof({ weight: 8, arbitrary: fc.integer().map(String) }, { weight: 1, arbitrary: fc.constantFrom('"12"', '"-9223372036854775808"', '9007199254740991') }),
  x: fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
  d: fc.date({ min: new Date(Date.UTC(1, 0, 1)), max: new Date(Date.UTC(9999, 11, 31)), noInvalidDate: true }).map((v) => JSON.stringify(v.toISOString().slice(0, 10))),
  t2: fc.oneof({ weight: 4, arbitrary: plainTimeText }, { weight: 1, arbitrary: timeText }),
};

const keyText = (name: string) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.constant(JSON.stringify(name)) },
    { weight: 1, arbitrary: fc.constant(`"\\u${name.charCodeAt(0).toString(16).padStart(4, '0')}${name.slice(1)}"`) },
  );
const separator = fc.constantFrom(':', ':', ' : ', ':\n');

/** One member of an object: a schema field (mostly with a fitting value), or an extra key. */
const memberText: (name: string) => fc.Arbitrary<string> = (name) =>
  fc
    .tuple(
      keyText(name),
      separator,
      fc.oneof({ weight: 15, arbitrary: fittingText[name] ?? valueText }, { weight: 1, arbitrary: valueText }),
    )
    .map(([key, sep, value]) => `${key}${sep}${value}`);

/** Mostly complete records with a few things wrong: absent, repeated or extra keys, odd values. */
const objectText: fc.Arbitrary<string> = fc
  .tuple(
    fc.shuffledSubarray(schema.fields.map((f) => f.name), { minLength: schema.fields.length - 2 }),
    fc.oneof(fc.constant([]), fc.array(fc.constantFrom(...schema.fields.map((f) => f.name), 'extra', 'TS', 'nested'), { maxLength: 2 })),
    fc.constantFrom('', '', '', '', '', '', ',', ' ,', ', '),
  )
  .chain(([names, more, trailing]) =>
    fc.tuple(fc.tuple(...[...names, ...more].map(memberText)), fc.constant(trailing)),
  )
  .map(([members, trailing]) => `{${members.join(',')}${members.length > 0 ? trailing : ''}}`);

/**
 * Records as JSON.stringify writes an object of exactly the schema's fields in schema order (the
 * form the SQL vouches for without its textual gate), mostly with one thing spliced in that only
 * the gate would catch: a trailing comma, a repeated or escaped key, NaN or Infinity in another
 * member, a comment, single quotes, whitespace.
 */
const canonicalText: fc.Arbitrary<string> = fc
  .tuple(
    fc.tuple(...schema.fields.map((f) => fc.oneof({ weight: 12, arbitrary: fittingText[f.name]! }, { weight: 1, arbitrary: valueText }, { weight: 1, arbitrary: fc.constant('null') }))),
    fc.oneof(
      { weight: 3, arbitrary: fc.constant('') },
      {
        weight: 4,
        arbitrary: fc.constantFrom(
          ',', ' ,', ',\n', ',"ts":0', ',"s":"x"', ',"x":1', ',"\\u0074s":0', ',"extra":NaN', ',"extra":-Infinity', ',"extra":[1,]', ',"extra":{"a":1,}',
          ',"extra":inf', ',"extra":nan', '/* c */', ',"extra":1 // c', ",'extra':1", ' ', ',"extra":[NaN]', ',"extra":1',
        ),
      },
    ),
    fc.nat(),
  )
  .map(([values, splice, at]) => {
    const members = schema.fields.map((f, i) => `${JSON.stringify(f.name)}:${values[i]}`);
    // Mostly at the end; sometimes between two members (a comma then comes from the splice).
    const position = at % 4 === 0 ? at % members.length : members.length;
    const before = members.slice(0, position).join(',');
    const after = members.slice(position).join(',');
    return `{${before}${splice}${after ? `${before ? ',' : ''}${after}` : ''}}`;
  });

const rawInput: fc.Arbitrary<Buffer | null> = fc.oneof(
  { weight: 8, arbitrary: objectText.map((t) => Buffer.from(t)) },
  { weight: 6, arbitrary: canonicalText.map((t) => Buffer.from(t)) },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))) },
  { weight: 1, arbitrary: fc.string().map((t) => Buffer.from(t)) },
  {
    weight: 1,
    arbitrary: fc.tuple(objectText, fc.constantFrom(' ', '\uFEFF', '\n', 'x', ']', '\u0000')).map(([t, extra]) => Buffer.from(`${extra}${t}`)),
  },
  { weight: 1, arbitrary: fc.tuple(objectText, fc.nat()).map(([t, cut]) => Buffer.from(t.slice(0, cut % (t.length + 1)))) },
  { weight: 1, arbitrary: objectText.map((t) => Buffer.concat([Buffer.from(t.slice(0, -1)), Buffer.from([0x2c, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d])])) },
  { weight: 1, arbitrary: fc.constantFrom(null, Buffer.alloc(0)) },
);

/**
 * Records in the canonical form (every field, schema order, compact) whose values sit on the
 * edges of what the canonical lane recognises: texts one digit too long, numbers that overflow,
 * raw control characters, year 0000, a timestamp fraction of seven digits.
 */
const laneEdgeText: Record<string, fc.Arbitrary<string>> = {
  ts: fc.oneof(plainTimeText, fc.constantFrom('0', '00', '01', '253402300799999', '253402300800000', '999999999999999', '1e3', '1.5', '-1', '"2024-01-01T00:00:00.1234567Z"', '"2024-02-30T00:00:00Z"', '"2024-01-01T00:00:00+01:00"')),
  s: fc.oneof(fc.string().map((v) => JSON.stringify(v)), fc.constantFrom('"a\tb"', '"a\u0001"', `"a${''}b"`, `"tab${'	'}"`, '"é😀"', '"a,\"b"', 'null', '1', 'true')),
  b: fc.constantFrom('true', 'false', 'null', '"true"', '1'),
  i: fc.constantFrom('0', '-0', '7', '2147483647', '2147483648', '-2147483648', '-2147483649', '9999999999', '12345678901', '1.0', '1e2', '"1"', 'null', '01'),
  n: fc.constantFrom('0', '-0', '999999999999999', '9999999999999999', '"123"', '"-007"', '"999999999999999999"', '"9999999999999999999"', '"1.5"', '1.5', 'null'),
  x: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)), fc.constantFrom('1e400', '-1e400', '1e-400', '1E5', '-0.0', '0.1', '"1.5"', 'null', '.5', '1.', '+1')),
  d: fc.constantFrom('"2024-02-29"', '"2023-02-29"', '"0000-01-01"', '"0001-01-01"', '"9999-12-31"', '"2024-13-01"', 'null', '"2024-01-01T00:00:00Z"'),
  t2: fc.oneof(plainTimeText, fc.constantFrom('null', '"1969-12-31T23:59:59.999Z"', '"2024-01-01T24:00:00Z"')),
};
/** Mostly fitting values, so that a record's one edge value decides. */
const isoTimeText = fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => JSON.stringify(new Date(ms).toISOString()));
const laneFittingText: Record<string, fc.Arbitrary<string>> = { ...fittingText, ts: isoTimeText, t2: isoTimeText };
const laneText: fc.Arbitrary<string> = fc
  .tuple(...schema.fields.map((f) => fc.oneof({ weight: 5, arbitrary: laneFittingText[f.name]! }, { weight: 1, arbitrary: laneEdgeText[f.name]! })))
  .map((values) => `{${schema.fields.map((f, i) => `${JSON.stringify(f.name)}:${values[i]}`).join(',')}}`);

function normalize(value: DuckDBValue): FieldValue {
  if (value instanceof DuckDBTimestampValue) return Number(value.micros / 1000n);
  if (value instanceof DuckDBDateValue) return value.toString();
  return value as FieldValue;
}

/** A stand-in for the staging table: the raw text, NULL when it is not UTF-8 (as DuckDB stores it). */
async function stageRawInput(connection: DuckDBConnection, inputs: readonly (Buffer | null)[]): Promise<void> {
  await connection.run('CREATE OR REPLACE TEMP TABLE raw_input (_row INTEGER, raw VARCHAR)');
  const appender = await connection.createAppender('raw_input', 'main', 'temp');
  inputs.forEach((input, row) => {
    appender.appendInteger(row);
    if (input === null || !isUtf8(input)) appender.appendNull();
    else appender.appendVarchar(input.toString('utf8'));
    appender.endRow();
  });
  appender.closeSync();
}

async function decodeInDuckDb(connection: DuckDBConnection, inputs: readonly (Buffer | null)[]): Promise<{ fast: boolean; values: FieldValue[] }[]> {
  await stageRawInput(connection, inputs);
  const sql = jsonDecodeSql(schema, 'raw_input', { rawColumn: 'raw', passthrough: ['_row'] });
  const reader = await connection.runAndReadAll(`${sql} ORDER BY _row`);
  return reader.getRows().map((row) => ({
    fast: row[row.length - 1] === true,
    values: row.slice(1, -1).map(normalize),
  }));
}

/** The canonical lane alone over `inputs`: per row, whether it vouched for it, and its values. */
async function laneInDuckDb(connection: DuckDBConnection, inputs: readonly Buffer[]): Promise<{ lane: boolean; general: boolean; values: FieldValue[] }[]> {
  await stageRawInput(connection, inputs);
  const sql = canonicalLaneSql(schema, 'raw_input', { rawColumn: 'raw', passthrough: ['_row'] })!;
  const reader = await connection.runAndReadAll(`${sql} ORDER BY _row`);
  return reader.getRows().map((row) => ({ lane: row[row.length - 2] === true, general: row[row.length - 1] === true, values: row.slice(1, -2).map(normalize) }));
}

const db = inMemoryDuckDb();

const withoutNegativeZero = (values: readonly FieldValue[]) => values.map((v) => (typeof v === 'number' && Object.is(v, -0) ? 0 : v));

describe('canonicalLaneSql', () => {
  it('vouches for a row only when createEventDecoder accepts it, with the same values', async () => {
    let rows = 0;
    let laneRows = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof({ weight: 4, arbitrary: laneText }, { weight: 1, arbitrary: canonicalText }, { weight: 1, arbitrary: objectText }), { minLength: 1, maxLength: 60 }), async (texts) => {
        const inputs = texts.map((t) => Buffer.from(t));
        const decoded = await laneInDuckDb(db.connection, inputs);
        inputs.forEach((input, row) => {
          rows++;
          if (!decoded[row]!.lane) return;
          laneRows++;
          const reference = decode(input);
          expect({ input: input.toString(), ok: reference.ok }).toEqual({ input: input.toString(), ok: true });
          if (!reference.ok) return;
          expect({ input: input.toString(), values: withoutNegativeZero(decoded[row]!.values) }).toEqual({
            input: input.toString(),
            values: withoutNegativeZero(reference.event.values),
          });
        });
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 200) },
    );
    expect(laneRows / rows).toBeGreaterThan(0.05);
  });

  it('vouches for every event of the schema as JSON.stringify writes it, fields in schema order, no escapes', async () => {
    const plain = fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '/', '-', ',', '}', ':', 'é', '€', '😀') });
    const event = fc.record({
      ts: fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms).toISOString()),
      s: fc.option(plain, { nil: null }),
      b: fc.option(fc.boolean(), { nil: null }),
      i: fc.integer(),
      n: fc.integer({ min: -(10 ** 15) + 1, max: 10 ** 15 - 1 }),
      x: fc.double({ noNaN: true, noDefaultInfinity: true }),
      d: fc.date({ min: new Date(Date.UTC(1970, 0, 1)), max: new Date(Date.UTC(2100, 0, 1)), noInvalidDate: true }).map((v) => v.toISOString().slice(0, 10)),
      t2: fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms).toISOString()), { nil: null }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 50 }), async (events) => {
        const inputs = events.map((e) => Buffer.from(JSON.stringify(e)));
        const decoded = await laneInDuckDb(db.connection, inputs);
        expect(inputs.filter((_, i) => !decoded[i]!.lane).map((input) => input.toString())).toEqual([]);
        inputs.forEach((input, i) => {
          const reference = decode(input);
          expect(reference.ok && withoutNegativeZero(decoded[i]!.values)).toEqual(reference.ok && withoutNegativeZero(reference.event.values));
        });
      }),
      { numRuns: 40 },
    );
  });
});

describe('jsonDecodeSql', () => {
  it('decodes a row on the fast path only when createEventDecoder accepts it, to the same values', async () => {
    let rows = 0;
    let fastRows = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(rawInput, { minLength: 1, maxLength: 60, size: 'medium' }), async (inputs) => {
        const decoded = await decodeInDuckDb(db.connection, inputs);
        inputs.forEach((input, row) => {
          rows++;
          if (!decoded[row]!.fast) return;
          fastRows++;
          const reference = decode(input);
          expect({ input: input?.toString(), ok: reference.ok }).toEqual({ input: input?.toString(), ok: true });
          if (!reference.ok) return;
          const expected = reference.event.values.map((v) => (typeof v === 'number' && Object.is(v, -0) ? 0 : v));
          const actual = decoded[row]!.values.map((v) => (typeof v === 'number' && Object.is(v, -0) ? 0 : v));
          expect({ input: input?.toString(), values: actual }).toEqual({ input: input?.toString(), values: expected });
        });
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 200) },
    );
    // The inputs are adversarial on purpose, but a good share must still take the fast path.
    expect(fastRows / rows).toBeGreaterThan(0.05);
  });

  /** What the fast path's leniency check looks for in the text (json-decode-sql.ts vouchedSql). */
  const LENIENT_LOOKALIKE = /,\s*[\]}]|[:,[]\s*[-+]?(nan|inf)/i;

  it('takes the fast path for every ordinary event as producers serialize it', async () => {
    const event = fc.record({
      ts: fc.oneof(
        fc.integer({ min: 0, max: 4_102_444_800_000 }),
        fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms).toISOString()),
      ),
      s: fc.option(fc.string({ unit: fc.constantFrom('a', 'Z', '0', ' ', '/', '-', 'é', '€', '😀', '\n', '"', '\\', '\u0001') }), { nil: null }),
      b: fc.boolean(),
      i: fc.integer(),
      n: fc.maxSafeInteger(),
      x: fc.double({ noNaN: true, noDefaultInfinity: true }),
      d: fc.date({ min: new Date(Date.UTC(1970, 0, 1)), max: new Date(Date.UTC(2100, 0, 1)), noInvalidDate: true }).map((v) => v.toISOString().slice(0, 10)),
      // A string holding text like ',]' or ':nan' is read right, on the slower route: the fast
      // path's textual check for yyjson's leniencies cannot tell it from a real trailing comma.
      extra: fc.oneof(
        fc.string().filter((text) => !LENIENT_LOOKALIKE.test(text)),
        fc.array(fc.integer()),
        fc.constant(null),
        fc.dictionary(fc.constantFrom('a', 'e'), fc.double({ noNaN: true, noDefaultInfinity: true })),
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 50 }), async (events) => {
        const inputs = events.map((e) => Buffer.from(JSON.stringify(e)));
        const decoded = await decodeInDuckDb(db.connection, inputs);
        expect(inputs.filter((_, i) => !decoded[i]!.fast).map((input) => input.toString())).toEqual([]);
      }),
      { numRuns: 40 },
    );
  });

  it('takes the fast path for events in schema order whose strings hold what the textual gate looks for', async () => {
    const tricky = fc.string({ unit: fc.constantFrom('a', ',', ']', '}', ':', ' ', 'n', 'a', 'N', 'I', 'f', '"ts":', '"s" :', '[') });
    const event = fc.record({
      ts: fc.integer({ min: 0, max: 4_102_444_800_000 }).map((ms) => new Date(ms).toISOString()),
      s: tricky,
      b: fc.boolean(),
      i: fc.integer(),
      n: fc.maxSafeInteger(),
      x: fc.integer().map((v) => v / 4),
      d: fc.constantFrom('2024-02-29', '1970-01-01', '2099-12-31'),
      t2: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 50 }), async (events) => {
        const inputs = events.map((e) => Buffer.from(JSON.stringify(e)));
        const decoded = await decodeInDuckDb(db.connection, inputs);
        expect(inputs.filter((_, i) => !decoded[i]!.fast).map((input) => input.toString())).toEqual([]);
        inputs.forEach((input, i) => {
          const reference = decode(input);
          expect(reference.ok && decoded[i]!.values.map((v) => (typeof v === 'number' && Object.is(v, -0) ? 0 : v))).toEqual(
            reference.ok && reference.event.values.map((v) => (typeof v === 'number' && Object.is(v, -0) ? 0 : v)),
          );
        });
      }),
      { numRuns: 40 },
    );
  });
});
