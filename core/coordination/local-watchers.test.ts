import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/harness/wait-for.ts';
import type { BatchManifest } from '../batch/batch-manifest.ts';
import type { Definitions } from '../definitions/definitions.ts';
import { StorageLayout } from '../storage/storage-layout.ts';
import { LocalBatchManifestStore } from './local-batch-manifest-store.ts';
import { LocalDefinitionsStore } from './local-definitions-store.ts';

/** Longer than any test here: whatever a watcher hears before it, the poll did not bring. */
const NEVER_MS = 600_000;

function definitions(tag: string): Definitions {
  return { views: { [`v_${tag}`]: { window: '1m', measures: { n: 'count(*)' } } }, alerts: {} };
}

function manifest(version: number): BatchManifest {
  const now = '2026-01-01T00:00:00.000Z';
  return {
    version, topic: 'clicks', cuts: { '0': version * 10_000 }, blockSize: 10_000, location: `batch/v${String(version).padStart(8, '0')}`,
    views: { v: { definitionHash: 'h', file: 'batch/v/v.parquet', rows: version } }, eventsRead: version, startedAt: now, finishedAt: now, durationMs: 1, producedBy: 'test',
  };
}

const leadership = { memberId: 'solo', signal: new AbortController().signal, fencingToken: 'local' };

describe('local stores: watchers in the publishing process', () => {
  let dir: string;
  let layout: StorageLayout;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'local-watchers-'));
    layout = new StorageLayout(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a definitions publication is heard by a watcher of the same store when the publish resolves, long before the poll interval', async () => {
    const store = new LocalDefinitionsStore(layout, NEVER_MS);
    const seen: number[] = [];
    const stop = store.watch((p) => seen.push(p.version));
    try {
      await store.publish(definitions('a'), 0);
      expect(seen).toEqual([1]);
      await store.publish(definitions('b'), 1);
      await store.publish(definitions('c'), 2);
      expect(seen).toEqual([1, 2, 3]);
    } finally {
      stop();
    }
  });

  it('a batch manifest publication is heard by a watcher of the same store when the publish resolves', async () => {
    const store = new LocalBatchManifestStore(layout, NEVER_MS);
    const seen: number[] = [];
    const stop = store.watch((m) => seen.push(m.version));
    try {
      await store.publish(manifest(1), leadership);
      expect(seen).toEqual([1]);
      await store.publish(manifest(2), leadership);
      expect(seen).toEqual([1, 2]);
    } finally {
      stop();
    }
  });

  it('the first poll, reading the version the publication already told of, does not tell it again', async () => {
    const store = new LocalDefinitionsStore(layout, 10);
    await store.publish(definitions('a'), 0);
    const seen: number[] = [];
    const stop = store.watch((p) => seen.push(p.version));
    try {
      await store.publish(definitions('b'), 1);
      // Polls read version 2 over and over meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen.filter((v) => v === 2)).toEqual([2]);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
    } finally {
      stop();
    }
  });

  it('a publication by another process (another store on the same directory) is heard at the poll', async () => {
    const watched = new LocalDefinitionsStore(layout, 20);
    const otherProcess = new LocalDefinitionsStore(layout, NEVER_MS);
    const seen: number[] = [];
    const stop = watched.watch((p) => seen.push(p.version));
    try {
      await otherProcess.publish(definitions('a'), 0);
      await waitFor('version 1 heard by polling', () => seen.includes(1));
      expect(seen).toEqual([1]);
    } finally {
      stop();
    }
  });

  it('a stopped watcher hears no more publications', async () => {
    const store = new LocalBatchManifestStore(layout, NEVER_MS);
    const seen: number[] = [];
    const stop = store.watch((m) => seen.push(m.version));
    await store.publish(manifest(1), leadership);
    stop();
    await store.publish(manifest(2), leadership);
    expect(seen).toEqual([1]);
  });

  it('a watcher that throws neither fails the publication nor keeps the others from hearing it', async () => {
    const store = new LocalDefinitionsStore(layout, NEVER_MS);
    const seen: number[] = [];
    const stops = [
      store.watch(() => {
        throw new Error('listener failed');
      }),
      store.watch((p) => seen.push(p.version)),
    ];
    try {
      await expect(store.publish(definitions('a'), 0)).resolves.toMatchObject({ version: 1 });
      expect(seen).toEqual([1]);
    } finally {
      for (const stop of stops) stop();
    }
  });
});
