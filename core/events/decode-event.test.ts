import { describe, expect, it } from 'vitest';
import type { EventSchema } from '../views/view-definition.ts';
import { createEventDecoder } from './decode-event.ts';

const schema: EventSchema = {
  timestampField: 'ts',
  fields: [
    { name: 'ts', type: 'TIMESTAMP' },
    { name: 'page', type: 'VARCHAR' },
    { name: 'latency_ms', type: 'DOUBLE' },
    { name: 'n', type: 'INTEGER' },
    { name: 'big', type: 'BIGINT' },
    { name: 'ok', type: 'BOOLEAN' },
    { name: 'day', type: 'DATE' },
  ],
};
const decode = createEventDecoder(schema);

describe('createEventDecoder', () => {
  it('decodes every field type into schema order, with absent fields as NULL', () => {
    const result = decode(
      JSON.stringify({ ts: '2026-11-21T09:00:00.250Z', page: '/a', latency_ms: 12.5, n: 7, big: '9007199254740993', ok: true, day: '2026-11-21', extra: 1 }),
    );
    expect(result).toEqual({
      ok: true,
      event: { values: [Date.UTC(2026, 10, 21, 9, 0, 0, 250), '/a', 12.5, 7, 9007199254740993n, true, '2026-11-21'], timestampMs: Date.UTC(2026, 10, 21, 9, 0, 0, 250) },
    });
    expect(decode(Buffer.from('{"ts": 1700000000000}'))).toEqual({
      ok: true,
      event: { values: [1700000000000, null, null, null, null, null, null], timestampMs: 1700000000000 },
    });
  });

  it.each([
    [null, 'empty'],
    ['', 'empty'],
    ['{"ts": 1', 'invalid_json'],
    ['[1,2]', 'not_an_object'],
    ['"text"', 'not_an_object'],
    ['{"page": "/a"}', 'missing_timestamp'],
    ['{"ts": null}', 'missing_timestamp'],
    ['{"ts": "yesterday"}', 'bad_timestamp'],
    ['{"ts": "2026-02-31T00:00:00Z"}', 'bad_timestamp'],
    ['{"ts": true}', 'bad_timestamp'],
    ['{"ts": 1700000000000, "latency_ms": "12"}', 'wrong_type'],
    ['{"ts": 1700000000000, "page": 5}', 'wrong_type'],
    ['{"ts": 1700000000000, "n": 1.5}', 'wrong_type'],
    ['{"ts": 1700000000000, "n": 3000000000}', 'wrong_type'],
    ['{"ts": 1700000000000, "big": 9007199254740993}', 'wrong_type'],
    ['{"ts": 1700000000000, "big": "99999999999999999999"}', 'wrong_type'],
    ['{"ts": 1700000000000, "ok": "yes"}', 'wrong_type'],
    ['{"ts": 1700000000000, "day": "21/11/2026"}', 'wrong_type'],
  ])('rejects %s as %s, naming the problem', (raw, reason) => {
    const result = decode(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toBe(reason);
      expect(result.message.length).toBeGreaterThan(10);
    }
  });

  it('names the field and its value in wrong-type messages', () => {
    const result = decode('{"ts": 1700000000000, "latency_ms": "slow"}');
    expect(result).toMatchObject({ ok: false, reason: 'wrong_type' });
    if (!result.ok) expect(result.message).toBe('field "latency_ms" should be DOUBLE but is the string "slow"');
  });
});
