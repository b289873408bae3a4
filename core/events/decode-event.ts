import type { FieldType } from '../config/config-schema.ts';
import type { EventSchema } from '../views/view-definition.ts';
import { parseTimestampMs } from './timestamp.ts';

/** A field's value as decoded: TIMESTAMP as epoch milliseconds, BIGINT as bigint, DATE as 'YYYY-MM-DD'. */
export type FieldValue = string | number | bigint | boolean | null;

export interface DecodedEvent {
  /** One value per schema field, in `schema.fields` order. */
  readonly values: FieldValue[];
  readonly timestampMs: number;
}

export type RejectReason = 'empty' | 'invalid_json' | 'not_an_object' | 'missing_timestamp' | 'bad_timestamp' | 'wrong_type';
export const REJECT_REASONS: readonly RejectReason[] = ['empty', 'invalid_json', 'not_an_object', 'missing_timestamp', 'bad_timestamp', 'wrong_type'];

export type DecodeResult =
  | { readonly ok: true; readonly event: DecodedEvent }
  | { readonly ok: false; readonly reason: RejectReason; readonly message: string };

type FieldDecoder = (value: unknown) => FieldValue | undefined;

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const INTEGER_TEXT = /^-?\d+$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const DECODERS: Readonly<Record<FieldType, FieldDecoder>> = {
  VARCHAR: (v) => (typeof v === 'string' ? v : undefined),
  BOOLEAN: (v) => (typeof v === 'boolean' ? v : undefined),
  DOUBLE: (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined),
  INTEGER: (v) => (typeof v === 'number' && Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX ? v : undefined),
  BIGINT: (v) => {
    // JSON numbers past 2^53 have already lost digits; such values must come as strings.
    if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : undefined;
    if (typeof v === 'string' && INTEGER_TEXT.test(v)) {
      const big = BigInt(v);
      return big >= INT64_MIN && big <= INT64_MAX ? big : undefined;
    }
    return undefined;
  },
  TIMESTAMP: (v) => parseTimestampMs(v),
  // Date.parse rolls 2026-02-30 over to March 2; a round trip catches days the month lacks.
  DATE: (v) => (typeof v === 'string' && DATE.test(v) && isCalendarDate(v) ? v : undefined),
};

function isCalendarDate(text: string): boolean {
  const parsedMs = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(parsedMs) && new Date(parsedMs).toISOString().slice(0, 10) === text;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * Builds the decoder for one schema: JSON text → field values in schema order, or the reason the
 * record is rejected. Absent and null fields are NULL, except the timestamp, which is required.
 * Fields not in the schema are ignored.
 */
export function createEventDecoder(schema: EventSchema): (raw: string | Buffer | null | undefined) => DecodeResult {
  const fields = schema.fields.map((f) => ({ name: f.name, type: f.type, decode: DECODERS[f.type] }));
  const timestampIndex = schema.fields.findIndex((f) => f.name === schema.timestampField);
  return (raw) => {
    if (raw === null || raw === undefined || raw.length === 0) return { ok: false, reason: 'empty', message: 'the record has no value' };
    let parsed: unknown;
    try {
      parsed = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
    } catch (error) {
      return { ok: false, reason: 'invalid_json', message: `not valid JSON: ${(error as Error).message}` };
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return { ok: false, reason: 'not_an_object', message: `expected a JSON object, got ${describeType(parsed)}` };
    }
    const record = parsed as Record<string, unknown>;
    const values: FieldValue[] = new Array(fields.length);
    for (let i = 0; i < fields.length; i++) {
      const field = fields[i]!;
      const value = record[field.name];
      if (value === undefined || value === null) {
        if (i === timestampIndex) return { ok: false, reason: 'missing_timestamp', message: `the timestamp field "${field.name}" is missing` };
        values[i] = null;
        continue;
      }
      const decoded = field.decode(value);
      if (decoded === undefined) {
        if (i === timestampIndex) {
          return { ok: false, reason: 'bad_timestamp', message: `the timestamp field "${field.name}" is ${describeType(value)}, not an ISO-8601 time or epoch milliseconds` };
        }
        return { ok: false, reason: 'wrong_type', message: `field "${field.name}" should be ${field.type} but is ${describeType(value)}` };
      }
      values[i] = decoded;
    }
    return { ok: true, event: { values, timestampMs: values[timestampIndex] as number } };
  };
}
