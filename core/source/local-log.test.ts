import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.ts';
import { LocalLog } from './local-log.ts';
import type { SourceRecord } from './record-source.ts';

const logger = createLogger('test', { level: 'error' });
const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lambda-log-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const values = (from: number, count: number) => Array.from({ length: count }, (_, i) => Buffer.from(`record-${from + i}`));
const text = (records: SourceRecord[]) => records.map((r) => `${r.offset}:${r.value!.toString()}`);

async function readAll(log: LocalLog, from = 0): Promise<SourceRecord[]> {
  const all: SourceRecord[] = [];
  for (let batch = await log.read(from); batch.length > 0; batch = await log.read(all.at(-1)!.offset + 1)) all.push(...batch);
  return all;
}

describe('LocalLog', () => {
  it('gives concurrent appends dense sequential offsets and reads them back in order', async () => {
    const log = await LocalLog.open(tempDir(), { logger });
    const ranges = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(values(i * 100, 1 + (i % 7)), 1_000 + i)));
    const sorted = [...ranges].sort((a, b) => a.firstOffset - b.firstOffset);
    expect(sorted[0]!.firstOffset).toBe(0);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.firstOffset).toBe(sorted[i - 1]!.endOffsetExclusive);
    const records = await readAll(log);
    const expected = ranges.flatMap((r, i) => values(i * 100, 1 + (i % 7)).map((v, j) => `${r.firstOffset + j}:${v.toString()}`));
    expect(text(records)).toEqual(expected.sort((a, b) => Number(a.split(':')[0]) - Number(b.split(':')[0])));
    expect(records.find((r) => r.offset === ranges[3]!.firstOffset)!.timestampMs).toBe(1_003);
    await log.close();
  });

  it('reads more than one chunk (1 MB) in one read, each value as appended and still so after later reads', async () => {
    const log = await LocalLog.open(tempDir(), { logger });
    // 3000 records of ~1 kB: one read of all of them fills three chunks.
    const big = Array.from({ length: 3_000 }, (_, i) => Buffer.from(`${i}:`.padEnd(1_000, String.fromCharCode(97 + (i % 26)))));
    await log.append(big);
    const first = await log.read(0, 10_000);
    const again = await log.read(1_500, 10_000);
    expect(first.map((r) => r.value!.toString())).toEqual(big.map((v) => v.toString()));
    expect(again.map((r) => r.value!.toString())).toEqual(big.slice(1_500).map((v) => v.toString()));
    await log.close();
  });

  it('keeps everything across a reopen, across rolled segments, and continues the offsets', async () => {
    const dir = tempDir();
    const log = await LocalLog.open(dir, { logger, segmentBytes: 2_000 });
    for (let i = 0; i < 30; i++) await log.append(values(i * 10, 10));
    await log.close();
    expect(readdirSync(dir).filter((n) => n.endsWith('.log')).length).toBeGreaterThan(2);
    const reopened = await LocalLog.open(dir, { logger, segmentBytes: 2_000 });
    expect(reopened.endOffset).toBe(300);
    expect(await reopened.append(values(300, 2))).toEqual({ firstOffset: 300, endOffsetExclusive: 302 });
    expect(text(await readAll(reopened, 295))).toEqual([295, 296, 297, 298, 299, 300, 301].map((o) => `${o}:record-${o}`));
    expect((await readAll(reopened)).length).toBe(302);
    await reopened.close();
  });

  it.each([
    ['a torn header', (path: string) => appendFileSync(path, Buffer.from([5, 0, 0]))],
    ['a torn payload', (path: string) => appendFileSync(path, Buffer.concat([Buffer.from([100, 0, 0, 0]), Buffer.alloc(20)]))],
    ['a corrupt last record', (path: string) => {
      const data = readFileSync(path);
      data.writeUInt8(data.readUInt8(data.length - 2) ^ 0xff, data.length - 2);
      writeFileSync(path, data);
    }],
  ])('cuts off %s left by a crash and keeps the records before it', async (_what, damage) => {
    const dir = tempDir();
    const log = await LocalLog.open(dir, { logger });
    await log.append(values(0, 5));
    await log.close();
    const path = join(dir, readdirSync(dir)[0]!);
    damage(path);
    const reopened = await LocalLog.open(dir, { logger });
    const survivors = _what === 'a corrupt last record' ? 4 : 5;
    expect(reopened.endOffset).toBe(survivors);
    expect(text(await readAll(reopened))).toEqual(values(0, survivors).map((v, i) => `${i}:${v.toString()}`));
    await reopened.append(values(survivors, 1));
    expect((await readAll(reopened)).length).toBe(survivors + 1);
    await reopened.close();
    const reread = await LocalLog.open(dir, { logger });
    expect(reread.endOffset).toBe(survivors + 1);
    await reread.close();
  });

  it('delivers to a subscriber from its start offset, then new appends as they come', async () => {
    const log = await LocalLog.open(tempDir(), { logger });
    await log.append(values(0, 50));
    const seen: number[] = [];
    const subscription = await log.subscribe({ groupId: 'g', startOffset: () => 20, onBatch: async (b) => void seen.push(...b.packed.offsets) });
    await log.append(values(50, 10));
    const deadline = Date.now() + 5_000;
    while (seen.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await subscription.stop();
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => 20 + i));
    await log.close();
  });

  it('keeps every acknowledged record when the writer is killed with SIGKILL at random moments', async () => {
    const dir = tempDir();
    for (let round = 0; round < 3; round++) {
      const acked: [number, number][] = [];
      const child = spawn(process.execPath, ['--import', 'tsx', new URL('../../test/support/local-log-writer.ts', import.meta.url).pathname, dir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) acked.push(line.split(' ').map(Number) as [number, number]);
      });
      while (acked.length < 20) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const log = await LocalLog.open(dir, { logger });
      const maxAcked = Math.max(...acked.map(([, end]) => end));
      expect(log.endOffset).toBeGreaterThanOrEqual(maxAcked);
      const records = await readAll(log);
      // Offsets are dense and each record's content is what the writer wrote at that offset.
      records.forEach((r, i) => expect(r.offset).toBe(i));
      expect(records.every((r) => JSON.parse(r.value!.toString()).n === r.offset)).toBe(true);
      await log.close();
      expect(statSync(dir).isDirectory()).toBe(true);
    }
  }, 60_000);
});
