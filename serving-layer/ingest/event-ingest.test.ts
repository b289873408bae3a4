import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/observability/logger.ts';
import { LocalLog } from '../../core/source/local-log.ts';
import { createEventIngest } from './event-ingest.ts';
import { IngestRefusals } from './ingest-refusals.ts';

const schema = { timestampField: 'ts', fields: [{ name: 'ts', type: 'TIMESTAMP' as const }, { name: 'page', type: 'VARCHAR' as const }] };
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('createEventIngest', () => {
  it('keeps the good lines durably, in order, and answers each bad line with its number and reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lambda-ingest-'));
    dirs.push(dir);
    const log = await LocalLog.open(dir, { logger: createLogger('t', { level: 'error' }) });
    const registry = new Registry();
    const refusals = new IngestRefusals(registry);
    const ingest = createEventIngest(log, schema, refusals);
    const body = [
      '{"ts": "2026-11-21T09:00:00Z", "page": "/a"}',
      '{"ts": "2026-11-21T09:00:01Z", "page": 5}',
      '',
      'not json',
      '{"page": "/b"}',
      '{"ts": 1763715600000, "page": "/c"}',
    ].join('\n');
    const result = await ingest(body);
    expect(result).toMatchObject({ accepted: 2, rejected: 3, offsets: { firstOffset: 0, endOffsetExclusive: 2 } });
    expect(result.errors.map((e) => [e.line, e.reason])).toEqual([[2, 'wrong_type'], [4, 'invalid_json'], [5, 'missing_timestamp']]);
    const stored = (await log.read(0)).map((r) => JSON.parse(r.value!.toString()).page);
    expect(stored).toEqual(['/a', '/c']);
    expect(await ingest('garbage only')).toEqual({ accepted: 0, rejected: 1, errors: [{ line: 1, reason: 'invalid_json', message: expect.any(String) }] });
    // Refused lines are counted (status's refusedAtIngest and the metric), every reason shown from 0.
    expect(refusals.counted()).toMatchObject({ total: 4, byReason: { invalid_json: 2, missing_timestamp: 1, wrong_type: 1, empty: 0 } });
    const exposition = await registry.metrics();
    expect(exposition).toContain('lambda_ingest_refused_records_total{reason="invalid_json"} 2');
    expect(exposition).toContain('lambda_ingest_refused_records_total{reason="bad_timestamp"} 0');
    await log.close();
  });
});
