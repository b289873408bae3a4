import { isUtf8 } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { FieldType } from '../core/config/config-schema.ts';
import { CanonicalEventReader } from '../core/events/canonical-event-reader.ts';
import { createEventDecoder, type DecodeResult, type FieldValue } from '../core/events/decode-event.ts';
import type { SourceRecord } from '../core/source/record-source.ts';
import { quoteIdent } from '../core/sql/identifiers.ts';
import type { EventSchema } from '../core/views/view-definition.ts';
import { ALL_FIELD_TYPES_TIME_NOT_FIRST } from '../test/fixtures/all-field-types.ts';
import { inMemoryDuckDb, type InMemoryDuckDb } from '../test/harness/in-memory-duckdb.ts';
import { MicroBatchDecoder, type DecodedMicroBatch } from './micro-batch-decoder.ts';
import { packRun, splitRun, type RecordRun } from './record-run.ts';
import { foundationConfig } from '../test/support/foundation-views.ts';

/**
 * The whole decoder against `createEventDecoder` applied to every record of the micro-batch in
 * order: whichever of the three routes (the JavaScript canonical reader, the SQL lanes over the
 * raw staging, the slow path) a record takes, the micro-batch must come out as if each record had
 * been decoded alone: the same good events with the same values, the same rejects in arrival
 * order, the same newest event time per partition.
 *
 * Micro-batches mix records in the canonical form (what the JavaScript reader takes), records
 * close to it that it must decline (other key orders, extra keys, whitespace, escapes, other
 * number and time forms, invalid dates), and garbage; runs are all ASCII (staged in pieces of 64
 * records when declined) or not (staged per value, some not UTF-8), short or spanning several
 * 2048-row chunks, and sometimes only part of a packed run.
 */

const FOUNDATION: EventSchema = foundationConfig({ topic: 't' }).schema;

const MAX_MS = 253_402_300_799_999;
const MS_PER_DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Values in the canonical form: what JSON.stringify writes for an object of the schema's fields.

type JsonScalar = string | number | boolean | null;

/** ASCII that JSON.stringify writes as it is (no quote, backslash or control character). */
const asciiUnit = fc.constantFrom(
  ...'abcxyzABZ0189 /-_.,:;{}[]()#@!?*+=<>|~`\'\x7f'.split(''),
  'null',
  'NaN',
  ':null,',
  'true}',
);
/** Non-ASCII that JSON.stringify writes as it is. */
const nonAsciiUnit = fc.constantFrom('é', 'ß', '€', '中', '😀', '\u00a0', '\u2028', '\ufeff', '\u{10ffff}');

function varcharValue(ascii: boolean): fc.Arbitrary<string> {
  const unit = ascii ? asciiUnit : fc.oneof({ weight: 3, arbitrary: asciiUnit }, { weight: 1, arbitrary: nonAsciiUnit });
  return fc.oneof(
    fc.string({ unit, maxLength: 12 }),
    // Around the 12 bytes a DuckDB string holds inline.
    fc.string({ unit: ascii ? fc.constantFrom('a', 'b', '/') : fc.constantFrom('a', 'é', '😀'), minLength: 10, maxLength: 14 }),
    fc.string({ unit, minLength: 13, maxLength: 60 }),
  );
}

const timeMs = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: MAX_MS }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 1, MAX_MS, 951_782_400_000 /* 2000-02-29 */, 4_107_542_400_000 /* 2100-03-01 */) },
);
const timestampValue: fc.Arbitrary<string | number> = fc.oneof(
  { weight: 6, arbitrary: timeMs.map((ms) => new Date(ms).toISOString()) },
  { weight: 2, arbitrary: timeMs },
  { weight: 1, arbitrary: fc.tuple(timeMs, fc.integer({ min: 1, max: 999 })).map(([ms, f]) => Math.min(ms + f / 1000, MAX_MS)) },
);
/** Days of 0001-01-01 and 9999-12-31. */
const dateValue = fc
  .oneof(fc.integer({ min: -719_162, max: 2_932_896 }), fc.integer({ min: 0, max: 60_000 }), fc.constantFrom(-719_162, 2_932_896, 11_016 /* 2000-02-29 */))
  .map((days) => new Date(days * MS_PER_DAY).toISOString().slice(0, 10));
/** Numbers, and strings (JSON.stringify writes a bigint no other way) of up to 19 digits. */
const bigintValue: fc.Arbitrary<number | string> = fc.oneof(
  { weight: 4, arbitrary: fc.integer() },
  { weight: 4, arbitrary: fc.maxSafeInteger() },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 1000 }).map(String) },
  // 1 to 19 digits alike: the JavaScript reader takes up to 15, the canonical lane up to 18.
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 19 }), fc.boolean(), fc.bigInt({ min: 0n, max: 2n ** 64n }))
      .map(([digits, negative, r]) => {
        const low = digits === 1 ? 0n : 10n ** BigInt(digits - 1);
        let v = low + (r % (10n ** BigInt(digits) - low));
        if (v > 2n ** 63n - 1n) v = 2n ** 63n - 1n - (r % 1000n);
        return String(negative ? -v : v);
      }),
  },
  { weight: 1, arbitrary: fc.constantFrom('9223372036854775807', '-9223372036854775808', '9007199254740993', '-9007199254740993', '999999999999999', '1000000000000000') },
);
const doubleValue: fc.Arbitrary<number> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.integer({ min: -1_000_000, max: 1_000_000 }).map((v) => v / 100),
  fc.constantFrom(0.1, 0.30000000000000004, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e21, 1e-7, 123456789012345680000, 2 ** 53 + 2),
);

/** A value of the type; `typical`: as most producers write them (BIGINT as numbers). */
function canonicalValue(type: FieldType, ascii: boolean, typical = false): fc.Arbitrary<JsonScalar> {
  switch (type) {
    case 'VARCHAR':
      return varcharValue(ascii);
    case 'BOOLEAN':
      return fc.boolean();
    case 'INTEGER':
      return fc.oneof(fc.integer(), fc.integer({ min: -5, max: 5 }), fc.constantFrom(-2_147_483_648, 2_147_483_647));
    case 'BIGINT':
      return typical ? fc.oneof(fc.integer(), fc.maxSafeInteger()) : bigintValue;
    case 'DOUBLE':
      return doubleValue;
    case 'TIMESTAMP':
      return timestampValue;
    case 'DATE':
      return dateValue;
  }
}

/** A member of an object as text: the key (with its quotes) and the value. */
interface Member {
  readonly key: string;
  readonly value: string;
}

interface Tokens {
  readonly lead?: string;
  readonly open?: string;
  readonly colon?: string;
  readonly comma?: string;
  readonly close?: string;
  readonly trail?: string;
}

function render(members: readonly Member[], t: Tokens = {}): string {
  const body = members.map((m) => `${m.key}${t.colon ?? ':'}${m.value}`).join(t.comma ?? ',');
  return `${t.lead ?? ''}${t.open ?? '{'}${body}${t.close ?? '}'}${t.trail ?? ''}`;
}

/** The schema's fields in order, each with a value JSON.stringify writes (null now and then, never for the event time). */
function canonicalMembers(schema: EventSchema, ascii: boolean, typical = false): fc.Arbitrary<Member[]> {
  return fc.tuple(
    ...schema.fields.map((f) => {
      const value = canonicalValue(f.type, ascii, typical);
      return f.name === schema.timestampField ? value : fc.option(value, { nil: null, freq: 6 });
    }),
  ).map((values) => schema.fields.map((f, i) => ({ key: JSON.stringify(f.name), value: JSON.stringify(values[i]) })));
}

/** JSON.stringify of an object of the schema's fields in schema order (of scalars, member by member). */
function canonicalArb(schema: EventSchema, ascii: boolean, typical = false): fc.Arbitrary<Buffer> {
  return canonicalMembers(schema, ascii, typical).map((members) => Buffer.from(render(members)));
}

// ---------------------------------------------------------------------------------------------
// Near the canonical form: valid JSON (mostly), one thing the JavaScript reader must not take.

function oddValueText(type: FieldType, ascii: boolean): fc.Arbitrary<string> {
  switch (type) {
    case 'VARCHAR':
      return fc.oneof(
        // Characters JSON.stringify escapes (lone surrogates included).
        fc
          .string({ unit: fc.constantFrom('a', 'b', '"', '\\', '\n', '\t', '\u0001', '\u001f', '/', '\ud800', '\udfff', ...(ascii ? [] : ['é'])), minLength: 1, maxLength: 20 })
          .map((s) => JSON.stringify(s)),
        fc.constantFrom('"\\u00e9t\\u00e9"', '"a\\/b"', '"\\ud83d\\ude00"', '"\\u0000"', '"x\\u0022y"', '"\\\\"', '""', '12', 'true', '{}', '[]', '["a"]'),
      );
    case 'BOOLEAN':
      return fc.constantFrom('"true"', '1', '0', '"false"', 'True', 'FALSE');
    case 'INTEGER':
      return fc.constantFrom(
        '1.0', '1e2', '-0', '1E0', '2147483647.0', '-2147483648', '2147483648', '-2147483649', '0.5', '"7"', '1e-2', '10.0e-1', '-0.0', '4294967296', '1e10', '12345678901', '01',
      );
    case 'BIGINT':
      return fc.constantFrom(
        '"9223372036854775807"', '"9223372036854775808"', '"-9223372036854775808"', '"-9223372036854775809"', '9007199254740991', '9007199254740993',
        '9007199254740992', '-9007199254740992', '"-0"', '"0012"', '"1.5"', '1.5', '1e15', '1.0', '"+5"', '" 5"', '"123456789012345678"', '"1234567890123456"',
        '12345678901234567', '-0', '"999999999999999"', '"-"', '""',
      );
    case 'DOUBLE':
      return fc.oneof(
        // Seventeen significant digits, and exponent forms.
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => v.toPrecision(17)),
        fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => v.toExponential()),
        fc.constantFrom(
          '-0', '-0.0', '-0e5', '-0E-0', '1e400', '-1e400', '1e-400', '-1e-400', '123456789012345678901234567890', '0.1e1', '1E+2', '4.9406564584124654e-324',
          '2.2250738585072011e-308', '9007199254740993', '0.30000000000000004', '1.00000000000000011', '2.00000000000000011102230246251565404236316680908203125',
          '0.000000000000000000000000000001', '1e22', '1e23', '12345678901234567e-5', 'NaN', 'Infinity', '-Infinity', '01', '.5', '+1', '1.', '"1.5"', '0x10',
        ),
      );
    case 'TIMESTAMP':
      return fc.oneof(
        fc.tuple(timeMs, fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 16 })).map(([ms, us, form]) => {
          const iso = new Date(ms).toISOString();
          const forms = [
            `${iso.slice(0, 19)}Z`,
            iso.slice(0, 23),
            `${iso.slice(0, 23)}${String(us).padStart(3, '0')}Z`,
            `${iso.slice(0, 21)}Z`,
            `${iso.slice(0, 23)}${String(us).padStart(3, '0')}123Z`,
            iso.replace('T', ' '),
            iso.replace('Z', 'z'),
            iso.replace('Z', '+00:00'),
            `${iso.slice(0, 23)}+01:00`,
            `${iso.slice(0, 23)}-0530`,
            iso.slice(0, 10),
            ` ${iso}`,
            `${iso.slice(0, 16)}Z`,
            String(ms),
          ];
          if (form < forms.length) return JSON.stringify(forms[form]);
          return form === forms.length ? ms.toExponential() : form === forms.length + 1 ? `${ms}.5` : `${ms}.0`;
        }),
        fc.constantFrom(
          '"2023-02-29T00:00:00.000Z"', '"2024-02-29T12:00:00.000Z"', '"2024-04-31T12:00:00.000Z"', '"2024-01-01T24:00:00.000Z"', '"2024-01-01T23:59:60.000Z"',
          '"1969-12-31T23:59:59.999Z"', '"+010000-01-01T00:00:00.000Z"', '"0000-01-01T00:00:00.000Z"', '-1', '253402300800000', '253402300799999', '1e3',
          '"March 7"', '"2024-13-01T00:00:00.000Z"', '"2024-00-10T00:00:00.000Z"', '"2024-01-01T00:00:00.000Zjunk"', 'true', '{}', '-0', '0.5', '"2024-02-30T00:00:00Z"',
        ),
      );
    case 'DATE':
      return fc.constantFrom(
        '"2023-02-29"', '"2024-02-29"', '"2024-13-01"', '"0000-01-01"', '"0001-01-01"', '"2024-1-01"', '"12024-01-01"', '"2024-01-01T00:00:00Z"', '20240101',
        '"2024-04-31"', '"-001-01-01"', '"2024-01-00"', '" 2024-01-01"', '"1900-02-29"', '"2000-02-29"',
      );
  }
}

type Mutation = (members: readonly Member[]) => string;

function mutationArb(schema: EventSchema, ascii: boolean): fc.Arbitrary<Mutation> {
  const count = schema.fields.length;
  const field = fc.integer({ min: 0, max: count - 1 });
  const insertAt = (members: readonly Member[], at: number, member: Member) => [...members.slice(0, at), member, ...members.slice(at)];
  const whitespace = fc.constantFrom(' ', '\n', '\t', '\r\n', '  ');
  return fc.oneof(
    // One value in another form.
    {
      weight: 8,
      arbitrary: field.chain((i) =>
        oddValueText(schema.fields[i]!.type, ascii).map((value): Mutation => (members) => render(members.map((m, k) => (k === i ? { ...m, value } : m)))),
      ),
    },
    // Two members swapped.
    { weight: 2, arbitrary: field.map((i): Mutation => (members) => render(members.map((m, k) => (k === i ? members[(i + 1) % count]! : k === (i + 1) % count ? members[i]! : m)))) },
    // A member left out (null for most fields, a missing time for the event time).
    { weight: 2, arbitrary: field.map((i): Mutation => (members) => render(members.filter((_, k) => k !== i))) },
    // An extra key.
    {
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.nat(count),
          fc.constantFrom('"extra":1', '"zz":null', '"nested":{"ts":1,"a":[1,2]}', '"arr":[1,2,3]', '"e":"x"', '"TS":"2024-01-01T00:00:00.000Z"', '"":0', '"extra":"é"'),
        )
        .map(([at, extra]): Mutation => (members) => {
          const [key, ...rest] = extra.split(':');
          return render(insertAt(members, at, { key: key!, value: rest.join(':') }));
        }),
    },
    // A schema key twice: JSON.parse takes the last one.
    {
      weight: 2,
      arbitrary: fc.tuple(field, fc.nat(count)).chain(([i, at]) =>
        fc
          .oneof(canonicalValue(schema.fields[i]!.type, ascii).map((v) => JSON.stringify(v)), fc.constant('null'), oddValueText(schema.fields[i]!.type, ascii))
          .map((value): Mutation => (members) => render(insertAt(members, at, { key: members[i]!.key, value }))),
      ),
    },
    // Whitespace JSON allows.
    {
      weight: 2,
      arbitrary: fc.tuple(whitespace, fc.constantFrom<keyof Tokens>('lead', 'open', 'colon', 'comma', 'close', 'trail'), fc.boolean()).map(
        ([ws, token, before]): Mutation =>
          (members) => {
            const plain = { lead: '', open: '{', colon: ':', comma: ',', close: '}', trail: '' }[token];
            return render(members, { [token]: before ? `${ws}${plain}` : `${plain}${ws}` });
          },
      ),
    },
    // Trailing commas and other leniencies JSON.parse rejects.
    { weight: 1, arbitrary: fc.constantFrom<Mutation>((m) => render(m, { close: ',}' }), (m) => render(m, { open: '{,' }), (m) => render(m, { comma: ',,' })) },
    // A key written with an escape, or in other case.
    {
      weight: 1,
      arbitrary: fc.tuple(field, fc.boolean()).map(([i, escape]): Mutation => (members) => {
        const name = schema.fields[i]!.name;
        const key = escape ? `"\\u${name.charCodeAt(0).toString(16).padStart(4, '0')}${name.slice(1)}"` : JSON.stringify(name.toUpperCase());
        return render(members.map((m, k) => (k === i ? { ...m, key } : m)));
      }),
    },
    // A byte order mark (not ASCII), or a NUL, before the object.
    { weight: 1, arbitrary: fc.constantFrom<Mutation>(...(ascii ? [] : [(m: readonly Member[]) => `\ufeff${render(m)}`]), (m) => `\u0000${render(m)}`) },
  );
}

function nearArb(schema: EventSchema, ascii: boolean): fc.Arbitrary<Buffer> {
  return fc.tuple(canonicalMembers(schema, ascii), mutationArb(schema, ascii)).map(([members, mutate]) => Buffer.from(mutate(members)));
}

// ---------------------------------------------------------------------------------------------
// Garbage: not an event at all, or bytes that are not text.

const HOLE = '\u0000HOLE\u0000';

/** A record in the canonical form with `bytes` spliced into a string value (or after the object). */
function withBytes(schema: EventSchema, ascii: boolean, bytes: fc.Arbitrary<number[]>): fc.Arbitrary<Buffer> {
  const strings = schema.fields.flatMap((f, i) => (f.type === 'VARCHAR' ? [i] : []));
  return fc.tuple(canonicalMembers(schema, ascii), bytes, fc.nat()).map(([members, spliced, pick]) => {
    const i = strings.length > 0 ? strings[pick % strings.length]! : -1;
    const text = i < 0 ? `${render(members)}${HOLE}` : render(members.map((m, k) => (k === i ? { ...m, value: `"ab${HOLE}cd"` } : m)));
    const [before, after] = text.split(HOLE);
    return Buffer.concat([Buffer.from(before!), Buffer.from(spliced), Buffer.from(after!)]);
  });
}

function garbageArb(schema: EventSchema, ascii: boolean): fc.Arbitrary<(Buffer | null)[]> {
  const one = (arb: fc.Arbitrary<Buffer | null>) => arb.map((b) => [b]);
  const text = (arb: fc.Arbitrary<string>) => one(arb.map((t) => Buffer.from(t)));
  const timestampAt = schema.fields.findIndex((f) => f.name === schema.timestampField);
  const choices: fc.WeightedArbitrary<(Buffer | null)[]>[] = [
    {
      weight: 3,
      arbitrary: text(
        fc.constantFrom(
          '{', '}', '{"ts":}', 'abc', "{'ts':1}", '{"ts":"2024-01-01T00:00:00.000Z"', '{"ts":"2024-01-01T00:00:00.000Z",}', '{"ts" "x"}', 'undefined',
          '{"a":1}{"b":2}', '{"ts":1} x', ' ', '\n', '{"ts":1}\u0000', '{"ts":1,"note":"a\u0000b"}', '[1,]',
        ),
      ),
    },
    // Cut short.
    { weight: 2, arbitrary: text(fc.tuple(canonicalArb(schema, ascii), fc.nat()).map(([t, cut]) => t.toString().slice(0, cut % Math.max(1, t.length)))) },
    // Valid JSON, not an object.
    {
      weight: 2,
      arbitrary: text(
        fc.oneof(
          fc.constantFrom('[1,2]', '"str"', '42', 'null', 'true', '[]', '[{"ts":1}]', '  "x"  ', '-0', '1e400'),
          fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)).map((v) => JSON.stringify(v)),
        ),
      ),
    },
    // No event time.
    {
      weight: 2,
      arbitrary: text(
        fc.tuple(canonicalMembers(schema, ascii), fc.boolean()).map(([members, drop]) =>
          render(drop ? members.filter((_, k) => k !== timestampAt) : members.map((m, k) => (k === timestampAt ? { ...m, value: 'null' } : m))),
        ),
      ),
    },
    { weight: 1, arbitrary: text(fc.constant('{}')) },
    { weight: 2, arbitrary: one(fc.constantFrom(null, Buffer.alloc(0))) },
    // Raw control characters inside a string.
    { weight: 1, arbitrary: one(withBytes(schema, ascii, fc.constantFrom<number[]>([0x09], [0x00], [0x1f], [0x0a]))) },
    { weight: 1, arbitrary: text(fc.string({ unit: ascii ? 'binary-ascii' : 'binary', maxLength: 30 })) },
  ];
  if (!ascii) {
    // Not UTF-8: createEventDecoder reads U+FFFD in its place (inside a string, a good event).
    const invalid = fc.constantFrom<number[]>([0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xfe, 0xfe]);
    choices.push({ weight: 3, arbitrary: one(withBytes(schema, ascii, invalid)) });
    // A character split between two records: the run is UTF-8, neither record is.
    choices.push({
      weight: 1,
      arbitrary: fc.tuple(canonicalArb(schema, ascii), canonicalArb(schema, ascii)).map(([a, b]) => [Buffer.concat([a, Buffer.from([0xe2, 0x82])]), Buffer.concat([Buffer.from([0xac]), b])]),
    });
  }
  return fc.oneof(...choices).map((records) => (ascii ? records.filter((r) => r === null || r.every((byte) => byte < 0x80)) : records));
}

// ---------------------------------------------------------------------------------------------
// Runs and micro-batches.

/**
 * Records of one length that differ only in a digit, mostly declined by the JavaScript reader (a
 * time without milliseconds) and taken by the canonical lane: raw text cut from the wrong place
 * of a piece would read as another record, which the slow path would not catch.
 */
function fixedWidthArb(schema: EventSchema): fc.Arbitrary<Buffer> {
  const timeAt = schema.fields.findIndex((f) => f.name === schema.timestampField);
  const numberAt = schema.fields.findIndex((f) => f.type === 'DOUBLE' || f.type === 'INTEGER' || f.type === 'BIGINT');
  return fc.tuple(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 3 })).map(([second, digit, form]) => {
    const time = `2024-01-01T00:00:0${second}${form === 0 ? '.000' : ''}Z`;
    const members = schema.fields.map((f, i) => ({ key: JSON.stringify(f.name), value: i === timeAt ? JSON.stringify(time) : i === numberAt ? String(digit) : 'null' }));
    return Buffer.from(render(members));
  });
}

/** Weights of canonical, near-canonical and garbage records in a run (`fixed`: see fixedWidthArb). */
const FLAVOURS = {
  fixed: [0, 0, 0],
  /** Canonical records as most producers write them: all for the JavaScript reader. */
  typical: [1, 0, 0],
  clean: [1, 0, 0],
  sparse: [150, 4, 2],
  mixed: [4, 3, 2],
  dirty: [1, 3, 3],
} as const;
type Flavour = keyof typeof FLAVOURS;

const recordArbs = new Map<string, fc.Arbitrary<(Buffer | null)[]>>();
function recordArb(schema: EventSchema, ascii: boolean, flavour: Flavour): fc.Arbitrary<(Buffer | null)[]> {
  const key = `${schema.fields.map((f) => f.name).join()}|${ascii}|${flavour}`;
  let arb = recordArbs.get(key);
  if (!arb) {
    const [canonical, near, garbage] = FLAVOURS[flavour];
    const weighted: fc.WeightedArbitrary<(Buffer | null)[]>[] = [
      { weight: canonical, arbitrary: canonicalArb(schema, ascii, flavour === 'typical').map((b) => [b]) },
      { weight: near, arbitrary: nearArb(schema, ascii).map((b) => [b]) },
      { weight: garbage, arbitrary: garbageArb(schema, ascii) },
    ];
    arb = flavour === 'fixed' ? fixedWidthArb(schema).map((b) => [b]) : fc.oneof(...weighted.filter((w) => w.weight > 0));
    recordArbs.set(key, arb);
  }
  return arb;
}

const flat = (groups: readonly (Buffer | null)[][]): (Buffer | null)[] => groups.flat();

interface RunValues {
  readonly ascii: boolean;
  readonly flavour: Flavour;
  readonly values: (Buffer | null)[];
}

const flavourArb = fc.constantFrom<Flavour>('typical', 'fixed', 'clean', 'sparse', 'sparse', 'mixed', 'dirty');

/** Of a long run: the fewest records, and the fewest distinct ones it repeats. */
interface LongRun {
  readonly minLength: number;
  readonly minPool: number;
}

/** The values of one run: short (0 to 300 records), or long (several 2048-row chunks: a pool of records repeated, some replaced). */
function runValuesArb(schema: EventSchema, long: LongRun | undefined, batchFlavour: Flavour | null): fc.Arbitrary<RunValues> {
  return fc.tuple(fc.boolean(), batchFlavour === null ? flavourArb : fc.constant(batchFlavour)).chain(([ascii, flavour]) => {
    const record = recordArb(schema, ascii, flavour);
    const values = long
      ? fc
          .tuple(
            fc.integer({ min: long.minLength, max: 6000 }),
            fc.array(record, { minLength: long.minPool, maxLength: 30 }),
            fc.array(fc.tuple(fc.nat(), recordArb(schema, ascii, 'dirty')), { maxLength: 40 }),
          )
          .map(([length, pool, replaced]) => {
            const records = flat(pool);
            if (records.length === 0) records.push(null);
            const out = Array.from<unknown, Buffer | null>({ length }, (_, k) => records[k % records.length]!);
            for (const [at, group] of replaced) out.splice(at % length, group.length, ...group);
            return out;
          })
      : fc
          .oneof(
            { weight: 1, arbitrary: fc.constant([]) },
            { weight: 4, arbitrary: fc.array(record, { minLength: 1, maxLength: 40, size: 'max' }) },
            { weight: 3, arbitrary: fc.array(record, { minLength: 41, maxLength: 300, size: 'max' }) },
          )
          .map(flat);
    return values.map((v) => ({ ascii, flavour, values: v }));
  });
}

/** How much of a packed run the micro-batch holds, as splitRun cuts it. */
type Cut = { readonly mode: 'whole' | 'both' | 'head' | 'tail' | 'three' | 'middle'; readonly a: number; readonly b: number };
const cutArb: fc.Arbitrary<Cut> = fc.record({
  mode: fc.constantFrom<Cut['mode']>('whole', 'whole', 'both', 'head', 'tail', 'three', 'middle'),
  a: fc.nat(),
  b: fc.nat(),
});

interface PartitionSpec {
  readonly partition: number;
  readonly firstOffset: number;
  readonly gaps: boolean;
  readonly runs: readonly { readonly run: RunValues; readonly cut: Cut }[];
}
interface BatchSpec {
  readonly partitions: readonly PartitionSpec[];
  readonly interleave: boolean;
}

function batchArb(schema: EventSchema, size: 'small' | 'big'): fc.Arbitrary<BatchSpec> {
  const runArb = (flavour: Flavour | null) =>
    size === 'small'
      ? runValuesArb(schema, undefined, flavour)
      : fc.oneof(runValuesArb(schema, { minLength: 2049, minPool: 1 }, flavour), runValuesArb(schema, undefined, flavour));
  const runsArb = (flavour: Flavour | null) => fc.array(fc.record({ run: runArb(flavour), cut: cutArb }), { minLength: 1, maxLength: size === 'small' ? 3 : 2 });
  // A big micro-batch opens with a long run, whole, mostly in the canonical form: more than a
  // chunk of records read in JavaScript, declined ones strewn over many windows of 64.
  const opening = fc.record({ run: runValuesArb(schema, { minLength: 3000, minPool: 8 }, 'sparse'), cut: fc.constant<Cut>({ mode: 'whole', a: 0, b: 0 }) });
  const partition = (p: number, flavour: Flavour | null, first: boolean): fc.Arbitrary<PartitionSpec> =>
    fc.record({
      partition: fc.constant(p),
      firstOffset: fc.oneof(fc.nat(1000), fc.integer({ min: 2 ** 32 - 400, max: 2 ** 32 + 400 }), fc.integer({ min: 0, max: 2 ** 50 })),
      gaps: fc.boolean(),
      runs: first && size === 'big' ? fc.tuple(opening, runsArb(flavour)).map(([o, rest]) => [o, ...rest.slice(1)]) : runsArb(flavour),
    });
  return fc
    .tuple(
      fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: size === 'small' ? 4 : 3 }),
      fc.boolean(),
      // Now and then one flavour for the whole micro-batch (all for the JavaScript reader, say).
      fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: flavourArb }),
    )
    .chain(([partitions, interleave, flavour]) => fc.tuple(...partitions.map((p, k) => partition(p, flavour, k === 0))).map((specs) => ({ partitions: specs, interleave })));
}

/** One run of the micro-batch, and its records as the test knows them. */
interface Part {
  readonly run: RecordRun;
  readonly records: readonly SourceRecord[];
  readonly ascii: boolean;
  readonly flavour: Flavour;
}

function cutParts(run: RecordRun, records: readonly SourceRecord[], cut: Cut): [RecordRun, SourceRecord[]][] {
  const n = records.length;
  const a = cut.a % (n + 1);
  const b = a + (cut.b % (n - a + 1));
  const [head, tail] = splitRun(run, a);
  switch (cut.mode) {
    case 'whole':
      return [[run, [...records]]];
    case 'both':
      return [[head, records.slice(0, a)], [tail, records.slice(a)]];
    case 'head':
      return [[head, records.slice(0, a)]];
    case 'tail':
      return [[tail, records.slice(a)]];
    case 'three':
    case 'middle': {
      const [middle, last] = splitRun(tail, b - a);
      const parts: [RecordRun, SourceRecord[]][] = [[head, records.slice(0, a)], [middle, records.slice(a, b)], [last, records.slice(b)]];
      return cut.mode === 'three' ? parts : [parts[1]!];
    }
  }
}

function buildBatch(spec: BatchSpec): Part[] {
  const perPartition = spec.partitions.map((p) => {
    const parts: Part[] = [];
    let offset = p.firstOffset;
    for (const { run: runValues, cut } of p.runs) {
      const records: SourceRecord[] = runValues.values.map((value, k) => {
        const record = { partition: p.partition, offset, timestampMs: 1_700_000_000_000 + k, value };
        offset += p.gaps && k % 7 === 3 ? 1 + (k % 5) : 1;
        return record;
      });
      const run = packRun(p.partition, records);
      for (const [piece, held] of cutParts(run, records, cut)) parts.push({ run: piece, records: held, ascii: runValues.ascii, flavour: runValues.flavour });
    }
    return parts;
  });
  if (!spec.interleave) return perPartition.flat();
  // Round robin over the partitions, each partition's runs in order.
  const out: Part[] = [];
  for (let k = 0; out.length < perPartition.reduce((n, p) => n + p.length, 0); k++) for (const parts of perPartition) if (k < parts.length) out.push(parts[k]!);
  return out;
}

// ---------------------------------------------------------------------------------------------
// The reference: createEventDecoder over every record, in arrival order.

const decoders = new Map<EventSchema, ReturnType<typeof createEventDecoder>>();
function decodeOne(schema: EventSchema, value: Buffer | null): DecodeResult {
  let decode = decoders.get(schema);
  if (!decode) decoders.set(schema, (decode = createEventDecoder(schema)));
  return decode(value);
}

/** How values compare. */
interface Comparison {
  /**
   * Whether a DOUBLE -0 must come back as -0 (else -0 and 0 are one value): true only in the
   * test about signed zeros, so that the other properties keep checking everything else.
   */
  readonly signedZero: boolean;
}

/**
 * A value as the test reads it back: TIMESTAMP as epoch microseconds, DATE as days since
 * 1970-01-01 (both bigint), VARCHAR as its UTF-8 bytes (see `columnSql`) shown as text, so that a
 * lone surrogate (which JSON.parse gives and no VARCHAR holds) counts as U+FFFD.
 */
function comparable(type: FieldType, value: FieldValue, comparison: Comparison): unknown {
  if (value === null) return null;
  if (type === 'TIMESTAMP') return BigInt(value as number) * 1000n;
  if (type === 'DATE') return BigInt(Date.parse(`${value as string}T00:00:00Z`) / MS_PER_DAY);
  if (type === 'VARCHAR') return Buffer.from(value as string, 'utf8').toString('utf8');
  // JSON.parse reads `-0` as -0, which Number.isInteger takes; an INTEGER column holds 0.
  if (type === 'INTEGER') return (value as number) + 0;
  if (type === 'DOUBLE' && !comparison.signedZero) return (value as number) + 0;
  return value;
}

/**
 * A column read back exactly. VARCHAR as hex: @duckdb/node-api drops a leading U+FEFF when it
 * turns a VARCHAR into a JavaScript string.
 */
function columnSql(name: string, type: FieldType): string {
  const column = quoteIdent(name);
  if (type === 'TIMESTAMP') return `epoch_us(${column})`;
  if (type === 'DATE') return `(${column} - DATE '1970-01-01')::BIGINT`;
  if (type === 'VARCHAR') return `hex(${column})`;
  return column;
}

function readBack(type: FieldType, value: unknown, comparison: Comparison): unknown {
  if (value === null) return null;
  if (type === 'VARCHAR') return Buffer.from(value as string, 'hex').toString('utf8');
  if (type === 'DOUBLE' && !comparison.signedZero) return (value as number) + 0;
  return value;
}

function show(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' && Object.is(value, -0)) return '-0';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function recordText(value: Buffer | null): string {
  if (value === null) return 'null';
  const text = isUtf8(value) ? JSON.stringify(value.toString('utf8')) : `<not UTF-8> ${value.toString('hex')}`;
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

interface Expected {
  readonly goodCount: number;
  readonly rejected: string[];
  readonly rows: string[];
  readonly newest: string[];
}

function expectedOf(schema: EventSchema, parts: readonly Part[], comparison: Comparison): Expected {
  const rejected: string[] = [];
  const rows: { partition: number; offset: number; line: string }[] = [];
  const newest = new Map<number, number>();
  let row = 0;
  for (const part of parts) {
    for (const record of part.records) {
      const result = decodeOne(schema, record.value);
      if (!result.ok) {
        rejected.push(`${record.partition}/${record.offset} ${result.reason}: ${result.message} <- ${recordText(record.value)}`);
      } else {
        const values = schema.fields.map((f, i) => show(comparable(f.type, result.event.values[i]!, comparison)));
        rows.push({ partition: record.partition, offset: record.offset, line: `${record.partition}/${record.offset} _row=${row} ${values.join(' ')}` });
        newest.set(record.partition, Math.max(newest.get(record.partition) ?? -Infinity, result.event.timestampMs));
      }
      row++;
    }
  }
  return {
    goodCount: rows.length,
    rejected,
    rows: sortRows(rows),
    newest: [...newest].sort((a, b) => a[0] - b[0]).map(([p, ms]) => `${p}: ${show(ms)}`),
  };
}

function sortRows(rows: { partition: number; offset: number; line: string }[]): string[] {
  return rows.sort((a, b) => a.partition - b.partition || a.offset - b.offset).map((r) => r.line);
}

/** Throws, saying where, unless `actual` and `expected` are the same lines. */
function assertSameLines(what: string, actual: readonly string[], expected: readonly string[]): void {
  const n = Math.max(actual.length, expected.length);
  for (let k = 0; k < n; k++) {
    if (actual[k] === expected[k]) continue;
    const around = (lines: readonly string[]) => lines.slice(Math.max(0, k - 1), k + 3).map((l) => `    ${l}`).join('\n');
    throw new Error(
      `${what}: ${actual.length} lines, expected ${expected.length}; first difference at line ${k}:\n  actual:\n${around(actual)}\n  expected:\n${around(expected)}`,
    );
  }
}

/** The decoded micro-batch against the reference, its rows read back from `decoded.relation`. */
async function check(db: InMemoryDuckDb, schema: EventSchema, decoded: DecodedMicroBatch, parts: readonly Part[], comparison: Comparison): Promise<void> {
  const expected = expectedOf(schema, parts, comparison);
  const text = new Map<string, Buffer | null>();
  for (const part of parts) for (const r of part.records) text.set(`${r.partition}/${r.offset}`, r.value);

  const rejected = decoded.rejected.map((r) => `${r.record.partition}/${r.record.offset} ${r.reason}: ${r.message} <- ${recordText(r.record.value)}`);
  assertSameLines('rejected records', rejected, expected.rejected);

  const columns = ['_row', '_partition', '_offset', ...schema.fields.map((f) => columnSql(f.name, f.type))];
  const reader = await db.connection.runAndReadAll(`SELECT ${columns.join(', ')} FROM ${decoded.relation}`);
  const rows = reader.getRows().map((r) => {
    const [row, partition, offset, ...values] = r as [number, number, bigint, ...unknown[]];
    const shown = values.map((v, i) => show(readBack(schema.fields[i]!.type, v, comparison)));
    return { partition, offset: Number(offset), line: `${partition}/${offset} _row=${row} ${shown.join(' ')}` };
  });
  const actualRows = sortRows(rows);
  try {
    assertSameLines('rows of decoded.relation', actualRows, expected.rows);
  } catch (error) {
    // Name the record behind the first row that differs.
    const k = actualRows.findIndex((line, i) => line !== expected.rows[i]);
    const line = (k >= 0 ? actualRows[k] : undefined) ?? expected.rows[actualRows.length];
    const key = line?.split(' ')[0] ?? '';
    throw new Error(`${(error as Error).message}\n  record ${key}: ${recordText(text.get(key) ?? null)}`);
  }
  expect(decoded.goodCount, 'goodCount').toBe(expected.goodCount);
  const newest = [...decoded.newestEventMs].sort((a, b) => a[0] - b[0]).map(([p, ms]) => `${p}: ${show(ms)}`);
  assertSameLines('newestEventMs', newest, expected.newest);
  expect(decoded.slowPathCount).toBeGreaterThanOrEqual(decoded.rejected.length);
}

/**
 * Which routes the records took, over a whole property: the JavaScript reader takes a record in
 * the canonical form when its run is UTF-8 (as EventStaging does), the rest is staged raw.
 */
class RouteCounts {
  records = 0;
  readerTaken = 0;
  /** Good records the reader did not take (SQL lanes or slow path). */
  declinedGood = 0;
  rejected = 0;
  slowPath = 0;
  batches = 0;
  /** Micro-batches of at least one record, all of them taken by the reader (no SQL at all). */
  readerOnlyBatches = 0;
  /** Micro-batches with more than one 2048-row chunk of records read in JavaScript, or staged raw. */
  readerChunked = 0;
  rawChunked = 0;
  private readonly readers = new Map<EventSchema, CanonicalEventReader>();

  add(schema: EventSchema, parts: readonly Part[], decoded: DecodedMicroBatch): void {
    let reader = this.readers.get(schema);
    if (!reader) this.readers.set(schema, (reader = new CanonicalEventReader(schema, 1)));
    let records = 0;
    let taken = 0;
    for (const part of parts) {
      const values = part.records.map((r) => r.value);
      const readable = isUtf8(Buffer.concat(values.filter((v) => v !== null)));
      records += values.length;
      for (const value of values) if (readable && value !== null && reader.read(value, 0, value.length, 0)) taken++;
    }
    this.records += records;
    this.readerTaken += taken;
    this.declinedGood += decoded.goodCount - taken;
    this.rejected += decoded.rejected.length;
    this.slowPath += decoded.slowPathCount;
    this.batches++;
    if (records > 0 && taken === records) this.readerOnlyBatches++;
    if (taken > 2048) this.readerChunked++;
    if (records - taken > 2048) this.rawChunked++;
  }

  toString(): string {
    return JSON.stringify(this);
  }
}

/** A short description of a micro-batch, with its records when there are few. */
function describeBatch(parts: readonly Part[]): string {
  const total = parts.reduce((n, p) => n + p.records.length, 0);
  const lines = parts.map(
    (p) =>
      `  run: partition ${p.run.partition}, records ${p.run.from}..${p.run.to} of ${p.run.packed.offsets.length}, ${p.ascii ? 'ASCII' : 'any bytes'}, ${p.flavour}` +
      (total <= 80 ? p.records.map((r) => `\n    ${r.offset}: ${recordText(r.value)}`).join('') : ''),
  );
  return `micro-batch of ${total} records:\n${lines.join('\n')}`;
}

function reporter<T>(describeCounterexample: (values: T) => string) {
  return (details: fc.RunDetails<T>) => {
    if (!details.failed) return;
    const example = details.counterexample ? describeCounterexample(details.counterexample) : '(no counterexample)';
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(
      `Property failed after ${details.numRuns} runs and ${details.numShrinks} shrinks (seed ${details.seed}, path "${details.counterexamplePath}")\n${error}\n${example}`,
    );
  };
}

const runs = (n: number) => Number(process.env.PROPERTY_RUNS ?? n);
/**
 * Shrinking a failing micro-batch costs a decode per attempt: after this long, fast-check reports
 * the smallest counterexample found so far (a passing run takes a few seconds).
 */
const TIME_LIMIT = { interruptAfterTimeLimit: 90_000 };

const SCHEMAS: readonly { readonly name: string; readonly schema: EventSchema; readonly smallRuns: number; readonly bigRuns: number }[] = [
  { name: 'every field type', schema: ALL_FIELD_TYPES_TIME_NOT_FIRST, smallRuns: 60, bigRuns: 6 },
  { name: 'the foundation schema', schema: FOUNDATION, smallRuns: 40, bigRuns: 4 },
];
const LOOSE_ZERO: Comparison = { signedZero: false };

describe('MicroBatchDecoder, as createEventDecoder record by record', () => {
  const db = inMemoryDuckDb();

  for (const { name, schema, smallRuns, bigRuns } of SCHEMAS) {
    for (const [size, numRuns] of [['small', smallRuns], ['big', bigRuns]] as const) {
      it(`${name}: ${size} micro-batches`, async () => {
        const decoder = await MicroBatchDecoder.create(db.instance, schema);
        const routes = new RouteCounts();
        try {
          await fc.assert(
            fc.asyncProperty(batchArb(schema, size), async (spec) => {
              const parts = buildBatch(spec);
              const decoded = await decoder.decode(parts.map((p) => p.run));
              try {
                await check(db, schema, decoded, parts, LOOSE_ZERO);
                routes.add(schema, parts, decoded);
              } finally {
                decoder.release(decoded);
              }
            }),
            { ...TIME_LIMIT, numRuns: runs(numRuns), reporter: reporter(([spec]: [BatchSpec]) => describeBatch(buildBatch(spec))) },
          );
        } finally {
          await decoder.close();
        }
        if (process.env.PROPERTY_ROUTES) console.log(`${name}, ${size}: ${routes}`);
        if (size === 'small') {
          // Every route had its share: the generators are not all of one kind.
          expect(routes.readerTaken / routes.records, `${routes}`).toBeGreaterThan(0.2);
          expect(routes.declinedGood / routes.records, `${routes}`).toBeGreaterThan(0.03);
          expect(routes.rejected / routes.records, `${routes}`).toBeGreaterThan(0.01);
          expect(routes.slowPath, `${routes}`).toBeGreaterThan(routes.rejected);
          expect(routes.readerOnlyBatches, `${routes}`).toBeGreaterThan(0);
        } else {
          expect(routes.readerChunked, `${routes}`).toBeGreaterThan(0);
        }
      }, 300_000);
    }
  }

  it('decodes micro-batches alternately in its two slots, each slot holding only its latest micro-batch', async () => {
    const schema = ALL_FIELD_TYPES_TIME_NOT_FIRST;
    const decoder = await MicroBatchDecoder.create(db.instance, schema);
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(batchArb(schema, 'small'), { minLength: 3, maxLength: 6 }), fc.boolean(), async (specs, concurrent) => {
          const batches = specs.map(buildBatch);
          const held: { decoded: DecodedMicroBatch; parts: Part[] }[] = [];
          const decode = (parts: readonly Part[]) => decoder.decode(parts.map((p) => p.run));
          try {
            // The first two: one after the other, or both under way at once (the speed layer's pipeline).
            const first = concurrent ? await Promise.all([decode(batches[0]!), decode(batches[1]!)]) : [await decode(batches[0]!), await decode(batches[1]!)];
            held.push({ decoded: first[0]!, parts: batches[0]! }, { decoded: first[1]!, parts: batches[1]! });
            expect(new Set(held.map((h) => h.decoded.slot)).size).toBe(2);
            for (const h of held) await check(db, schema, h.decoded, h.parts, LOOSE_ZERO);
            for (const parts of batches.slice(2)) {
              const released = held.shift()!;
              decoder.release(released.decoded);
              const decoded = await decode(parts);
              held.push({ decoded, parts });
              expect(decoded.slot).toBe(released.decoded.slot);
              // The new micro-batch alone in its slot, and the one still held untouched.
              for (const h of held) await check(db, schema, h.decoded, h.parts, LOOSE_ZERO);
            }
          } finally {
            for (const h of held) decoder.release(h.decoded);
          }
        }),
        {
          ...TIME_LIMIT,
          numRuns: runs(20),
          reporter: reporter(([specs, concurrent]: [BatchSpec[], boolean]) =>
            `${concurrent ? 'first two decoded concurrently' : 'sequential'}\n${specs.map((s, k) => `#${k} ${describeBatch(buildBatch(s))}`).join('\n')}`,
          ),
        },
      );
    } finally {
      await decoder.close();
    }
  }, 300_000);

  /**
   * JSON.parse reads `-0` (and `-0.0`, `-1e-400`) as -0, and DuckDB's DOUBLE holds -0: each
   * route must keep the sign. Records in the canonical form or close to it, in runs the
   * JavaScript reader reads, and in runs it cannot (a record not UTF-8 among them).
   */
  it('keeps the sign of a DOUBLE -0 on every route', async () => {
    const negativeZero = fc.constantFrom('-0', '-0.0', '-0e0', '-0E+5', '-1e-400', '0', '-5e-324');
    const recordFor = (schema: EventSchema) =>
      fc
        .tuple(
          canonicalMembers(schema, true),
          fc.array(negativeZero, { minLength: schema.fields.length, maxLength: schema.fields.length }),
          fc.constantFrom('canonical', 'second-less time', 'leading space', 'extra key', 'swapped'),
        )
        .map(([members, zeros, form]) => {
          const timeAt = schema.fields.findIndex((f) => f.name === schema.timestampField);
          let m = members.map((member, i) => (schema.fields[i]!.type === 'DOUBLE' ? { ...member, value: zeros[i]! } : member));
          if (form === 'second-less time') m = m.map((member, i) => (i === timeAt ? { ...member, value: '"2024-05-06T07:08:09Z"' } : member));
          if (form === 'extra key') m = [...m, { key: '"extra"', value: '1' }];
          if (form === 'swapped') m = [m[1]!, m[0]!, ...m.slice(2)];
          return Buffer.from(`${form === 'leading space' ? ' ' : ''}${render(m)}`) as Buffer;
        });
    for (const schema of [ALL_FIELD_TYPES_TIME_NOT_FIRST, FOUNDATION]) {
      const decoder = await MicroBatchDecoder.create(db.instance, schema);
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(recordFor(schema), { minLength: 1, maxLength: 20 }), fc.boolean(), async (values: Buffer[], readable: boolean) => {
            // A record that is not UTF-8 keeps the JavaScript reader off the whole run.
            const all = readable ? values : [...values, Buffer.from([0x7b, 0xff, 0x7d])];
            const records = all.map((value, k) => ({ partition: 0, offset: k, timestampMs: 0, value }));
            const parts: Part[] = [{ run: packRun(0, records), records, ascii: readable, flavour: 'mixed' }];
            const decoded = await decoder.decode(parts.map((p) => p.run));
            try {
              await check(db, schema, decoded, parts, { signedZero: true });
            } finally {
              decoder.release(decoded);
            }
          }),
          { ...TIME_LIMIT, numRuns: runs(30), reporter: reporter(([values, readable]: [Buffer[], boolean]) => `${readable ? 'readable' : 'with a record not UTF-8'}\n${values.map((v) => `  ${recordText(v)}`).join('\n')}`) },
        );
      } finally {
        await decoder.close();
      }
    }
  }, 300_000);
});
