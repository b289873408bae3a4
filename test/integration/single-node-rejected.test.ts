import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ALL_ROLES, LambdaNode } from '../../cli/node/lambda-node.ts';
import { parseConfig } from '../../core/config/load-config.ts';
import type { Role } from '../../core/node/role.ts';
import { createLogger } from '../../core/observability/logger.ts';
import type { StatusInfo } from '../../serving-layer/http/api-types.ts';
import { BASE_MS, makeEvents, query, scenarioConfigYaml } from './fixtures/exactness-scenario.ts';

// Issue 17: `count(*) FROM rejected`, `/v1/status`'s rejected count (the console badge shows it)
// count one set, each malformed record once, below and above the batch cut, before and after a
// swap and across a restart; lines refused by POST /v1/events are counted apart, and only there.
// The oracle is what the test itself wrote: the offsets the local log gave the malformed records.

/** Records the pipeline rejects (written straight to the log: POST /v1/events refuses them). */
const MALFORMED = ['not json', '[1, 2]', '{"page": "/no-time"}', '{"ts": "not a time"}', `{"ts": ${BASE_MS}, "latency_ms": "slow"}`, ''];
const MALFORMED_REASONS = ['invalid_json', 'not_an_object', 'missing_timestamp', 'bad_timestamp', 'wrong_type', 'empty'];
/** Lines POST /v1/events refuses; marked so that a copy anywhere in SQL would be found. */
const REFUSED = ['{"ts": "never", "page": "/refused-at-ingest"}', '{"page": "/refused-at-ingest"}'];

interface Sent {
  /** Offsets of the malformed records in the log (one partition). */
  readonly malformedOffsets: number[];
  /** Lines refused by POST /v1/events in this process. */
  refusedHere: number;
  events: number;
}

async function status(url: string): Promise<StatusInfo> {
  return (await (await fetch(`${url}/v1/status`)).json()) as StatusInfo;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function rejectedCount(url: string): Promise<number> {
  const [[n]] = (await query(url, 'SELECT count(*)::BIGINT FROM rejected')) as [[number]];
  return n;
}

describe('rejected records on a single node', () => {
  let dir: string;
  let node: LambdaNode | undefined;
  const logger = createLogger('test', { level: 'error' });

  afterEach(async () => {
    await node?.stop();
    node = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  function start(yaml: string, roles: readonly Role[] = ALL_ROLES): Promise<LambdaNode> {
    return LambdaNode.start({ loaded: parseConfig(yaml), roles: [...roles], logger });
  }

  /** POSTs a round of good events with refused lines among them, then writes malformed records to the log. */
  async function sendRound(sent: Sent): Promise<void> {
    const lines = makeEvents(sent.events, 300).map((e) => JSON.stringify(e));
    lines.splice(50, 0, ...REFUSED);
    const response = await fetch(`${node!.url}/v1/events`, { method: 'POST', body: lines.join('\n') });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { rejected: number }).rejected).toBe(REFUSED.length);
    sent.events += 300;
    sent.refusedHere += REFUSED.length;
    const { firstOffset, endOffsetExclusive } = await node!.localLog!.append(MALFORMED.map((line) => Buffer.from(line)));
    for (let offset = firstOffset; offset < endOffsetExclusive; offset++) sent.malformedOffsets.push(offset);
  }

  /** Every way of counting agrees with what was sent, read once. */
  async function expectCountsAgree(sent: Sent): Promise<StatusInfo> {
    const url = node!.url!;
    const s = await status(url);
    expect(s.rejected.total, 'status rejected.total').toBe(sent.malformedOffsets.length);
    expect(s.rejected.notKept).toBe(0);
    const rows = (await query(url, 'SELECT _partition, _offset, reason FROM rejected ORDER BY _offset')) as [number, number, string][];
    expect(rows.map(([p, o]) => [p, o]), 'rejected rows: each malformed record once').toEqual(sent.malformedOffsets.map((o) => [0, o]));
    expect(rows.map(([, , reason]) => reason)).toEqual(sent.malformedOffsets.map((_, i) => MALFORMED_REASONS[i % MALFORMED.length]));
    const rounds = sent.malformedOffsets.length / MALFORMED.length;
    expect(s.rejected.byReason).toMatchObject(Object.fromEntries(MALFORMED_REASONS.map((r) => [r, rounds])));
    expect(s.refusedAtIngest.total, 'refused in this process').toBe(sent.refusedHere);
    return s;
  }

  /** Reads the counts again and again until two batch versions newer than the current one are served. */
  async function expectAgreeAcrossSwaps(sent: Sent): Promise<void> {
    const url = node!.url!;
    await waitUntil(`${sent.malformedOffsets.length} rejected records in SQL`, async () => (await rejectedCount(url)) === sent.malformedOffsets.length);
    const from = (await status(url)).batch.version ?? 0;
    const versions = new Set<number>();
    let reads = 0;
    await waitUntil('two batch swaps', async () => {
      const s = await expectCountsAgree(sent);
      if (s.batch.version !== null) versions.add(s.batch.version);
      reads++;
      return [...versions].filter((v) => v > from).length >= 2;
    });
    expect(reads).toBeGreaterThan(2);
  }

  it('counts each malformed record once in SQL and in status, below and above the cut, across swaps and a restart; refused lines only in refusedAtIngest', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-rejected-'));
    const yaml = scenarioConfigYaml(dir);
    node = await start(yaml);
    const sent: Sent = { malformedOffsets: [], refusedHere: 0, events: 0 };
    for (let round = 0; round < 2; round++) {
      await sendRound(sent);
      await expectAgreeAcrossSwaps(sent);
    }
    // The metric is this process's counter: the speed layer read the log from offset 0 here.
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toContain(`lambda_ingest_refused_records_total{reason="bad_timestamp"} ${sent.refusedHere / 2}`);
    expect(metrics).toContain(`lambda_ingest_refused_records_total{reason="missing_timestamp"} ${sent.refusedHere / 2}`);
    const speedRejected = [...metrics.matchAll(/^lambda_speed_rejected_records_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(speedRejected).toBe(sent.malformedOffsets.length);
    expect(metrics).toContain(`lambda_rejected_records{reason="invalid_json"} ${sent.malformedOffsets.length / MALFORMED.length}`);

    // The batch cut has passed the first rounds' records: those come from the archived files.
    const cut = (await status(node.url!)).batch.cuts['0'] ?? 0;
    expect(cut).toBeGreaterThan(sent.malformedOffsets[0]!);

    await node.stop();
    node = await start(yaml);
    sent.refusedHere = 0; // refused lines were never stored: a new process has refused none
    await expectAgreeAcrossSwaps(sent);
    await sendRound(sent);
    await expectAgreeAcrossSwaps(sent);
    // After the restart the speed layer's counter counts only what this process read (above the
    // cut it started at); the gauge is status's number.
    const after = await (await fetch(`${node.url}/metrics`)).text();
    const gauge = [...after.matchAll(/^lambda_rejected_records\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    expect(gauge).toBe(sent.malformedOffsets.length);

    // Refused lines are nowhere in SQL, neither as rejected records nor as events.
    const url = node.url!;
    expect(await query(url, "SELECT count(*)::BIGINT FROM rejected WHERE raw LIKE '%refused-at-ingest%'")).toEqual([[0]]);
    expect(await query(url, "SELECT count(*)::BIGINT FROM events WHERE page = '/refused-at-ingest'")).toEqual([[0]]);
  }, 180_000);

  it('keeps the count exact when the speed layer keeps fewer rows than it rejected (speed.maxRejectedKept)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'lambda-rejected-kept-'));
    // No batch role: every record stays above the cut, with the speed layer.
    const yaml = scenarioConfigYaml(dir).replace('speed: {interval: 200ms, blockSize: 100, ', 'speed: {interval: 200ms, blockSize: 100, maxRejectedKept: 4, ');
    node = await start(yaml, ['speed', 'serving', 'archiver']);
    const sent: Sent = { malformedOffsets: [], refusedHere: 0, events: 0 };
    for (let round = 0; round < 3; round++) await sendRound(sent);
    const url = node.url!;
    const total = sent.malformedOffsets.length;
    await waitUntil(`status to count ${total} rejected records`, async () => (await status(url)).rejected.total === total);
    const s = await status(url);
    expect(s.rejected.notKept).toBe(total - 4);
    expect(await rejectedCount(url)).toBe(4);
    // The newest four are the rows kept.
    expect((await query(url, 'SELECT _offset FROM rejected ORDER BY 1')).flat()).toEqual(sent.malformedOffsets.slice(-4));
  }, 120_000);
});
