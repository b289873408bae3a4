import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../test/harness/free-port.ts';
import { FIXTURE_STATUS, FIXTURE_VIEWS, startServingFixture, type ServingFixture } from '../../test/support/serving-fixture.ts';
import { renderStatus } from './status-command.ts';

const run = promisify(execFile);
const LAMBDA = new URL('../lambda.mjs', import.meta.url).pathname;

async function lambda(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LAMBDA, ...args], { env: { ...process.env, LAMBDA_URL: '', LAMBDA_TOKEN: '' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let node: ServingFixture;
beforeAll(async () => {
  node = await startServingFixture();
});
afterAll(async () => node?.close());

describe('lambda status', () => {
  it('prints the node, batch master, batch version and cuts, lag, freshness, rejects, members and views', async () => {
    const { code, stdout, stderr } = await lambda('status', '--url', node.url);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('node       node-a (cluster), batch master');
    expect(stdout).toContain('roles      speed, batch, serving, archiver');
    expect(stdout).toContain('batch      v3, published 2m ago; cuts (p0=20000 p1=10000)');
    expect(stdout).toContain('lag        42 records (p0=40 p1=2)');
    expect(stdout).toContain('freshness  realtime updated 800ms ago');
    expect(stdout).toContain('rejected   7 (invalid_json 4, missing_timestamp 3)');
    expect(stdout).toMatch(/members \(2\)\n/);
    expect(stdout).toMatch(/│ node-a │ yes +│ speed, batch, serving, archiver │ http:\/\/127.0.0.1:8080 │ p0 p1 +│/);
    expect(stdout).toMatch(/│ node-b │ +│ serving +│ http:\/\/127.0.0.1:8081 │ — +│/);
    expect(stdout).toMatch(/│ page_traffic │ serving +│ 1m +│ window_start, page, views, revenue │ v3 +│ 2025-11-21T09:00:00.000Z │ 1s +│/);
  });

  it('prints the raw JSON with --json', async () => {
    const { stdout } = await lambda('status', '--url', node.url, '--json');
    expect(JSON.parse(stdout)).toEqual({ status: FIXTURE_STATUS, views: FIXTURE_VIEWS });
  });

  it('exits non-zero with a message when no node listens', async () => {
    const { code, stderr } = await lambda('status', '--url', `http://127.0.0.1:${await freePort()}`);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/^lambda: cannot reach the node/);
  });

  it('prints a status with nothing published yet and missing fields', () => {
    const text = renderStatus(
      { ...FIXTURE_STATUS, isMaster: false, batch: { version: null, cuts: {}, publishedAtMs: null, ageMs: null }, members: [] },
      [],
    );
    expect(text).toContain('batch      no batch version published yet');
    expect(text).not.toContain('batch master');
    expect(text).toContain('members (0)');
  });

  it('prints an archiver node\'s partitions with their archived positions and the offsets lost to retention', () => {
    const text = renderStatus(
      {
        ...FIXTURE_STATUS,
        roles: ['archiver', 'batch'],
        archiver: { partitions: [{ partition: 0, archivedEndExclusive: 1200, readEndExclusive: 1300 }, { partition: 3, archivedEndExclusive: 40, readEndExclusive: 40 }], gapOffsets: 7 },
      },
      [],
    );
    expect(text).toContain('archiving  p0<1200 p3<40 (archived below); 7 offsets lost to retention');
    expect(text).toContain('views (0)');
  });

  it('prints the events tail, and how far events lags the views only while it lags', () => {
    const complete = renderStatus({ ...FIXTURE_STATUS, events: { tailRows: 1_234, maxTailRows: 1_000_000, lagging: false, lagRecords: 0 } }, []);
    expect(complete).toContain('events     tail 1,234 rows (limit 1,000,000)\n');
    const withRecent = renderStatus({ ...FIXTURE_STATUS, events: { tailRows: 801_234, maxTailRows: 1_000_000, maxRecentRows: 1_000_000, lagging: false, lagRecords: 0 } }, []);
    expect(withRecent).toContain('events     tail 801,234 rows (limit 1,000,000 not archived + 1,000,000 recent archived)\n');
    expect(complete).not.toContain('lagging');
    const lagging = renderStatus({ ...FIXTURE_STATUS, events: { tailRows: 1_000_000, maxTailRows: 1_000_000, lagging: true, lagRecords: 12_345 } }, []);
    expect(lagging).toContain('events     lagging 12,345 records behind the views (tail limit 1,000,000 rows); tail 1,000,000 rows\n');
    // A node without a speed layer has no tail: no line.
    expect(renderStatus(FIXTURE_STATUS, [])).not.toMatch(/^events/m);
  });

  it('prints the published definitions version, the one this node runs, and each member\'s', () => {
    const members = FIXTURE_STATUS.members.map((m, i) => ({ ...m, definitionsVersion: i === 0 ? 4 : 3 }));
    const behind = renderStatus({ ...FIXTURE_STATUS, definitions: { version: 4, running: 3 }, members }, []);
    expect(behind).toContain('definitions  v4 published; this node runs v3 (it follows in seconds; if it stays behind, its log says why)');
    expect(behind).toMatch(/│ node-a │ .*│ v4 +│/);
    expect(behind).toMatch(/│ node-b │ .*│ v3 +│/);
    expect(renderStatus({ ...FIXTURE_STATUS, definitions: { version: 4, running: 4 } }, [])).toContain('definitions  v4, which this node runs');
  });
});
