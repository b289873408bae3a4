import { DuckDBInstance } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { BatchProgress } from '../core/batch/batch-progress.ts';
import { LocalBatchProgressStore } from '../core/coordination/local-batch-progress-store.ts';
import { createLogger } from '../core/observability/logger.ts';
import { quoteLiteral } from '../core/sql/identifiers.ts';
import { BatchRunProgress } from './batch-run-progress.ts';

const logger = createLogger('batch-run-progress-test', { level: 'silent' });

describe('BatchRunProgress', () => {
  it("follows DuckDB's progress of the running COPY, never going back, and finishes every view at 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'run-progress-'));
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    try {
      await connection.run('SET enable_progress_bar = true');
      await connection.run('SET enable_progress_bar_print = false');
      const source = quoteLiteral(join(dir, 'source.parquet'));
      await connection.run(`COPY (SELECT i, i % 1000 AS k, 'u' || (i % 100000) AS u FROM range(6000000) t(i)) TO ${source} (FORMAT parquet)`);
      const store = new LocalBatchProgressStore();
      const seen: BatchProgress[] = [];
      store.watch((p) => p && seen.push(p));
      const progress = new BatchRunProgress({ store, connection, logger, definitionsVersion: 4, batchVersion: 9, producedBy: 'm', startedAtMs: Date.now(), mayWrite: () => true, intervalMs: 10 });
      progress.planned([
        { view: 'small', weight: 0.1, extended: true },
        { view: 'big', weight: 1, extended: false },
      ]);
      progress.viewStarted('small');
      progress.viewDone('small');
      progress.viewStarted('big');
      // Long enough for DuckDB to report estimates while it reads (6M rows into lists of hashes).
      await connection.run(`COPY (SELECT k, count(*), list(hash(u)) FROM read_parquet(${source}) GROUP BY k) TO ${quoteLiteral(join(dir, 'big.parquet'))} (FORMAT parquet)`);
      progress.viewDone('big');
      await progress.finish('published');

      const big = seen.map((p) => p.views['big']!.fraction);
      expect(big.some((f) => f > 0 && f < 1)).toBe(true);
      expect(big).toEqual([...big].sort((a, b) => a - b));
      const overall = seen.map((p) => p.fraction);
      expect(overall).toEqual([...overall].sort((a, b) => a - b));
      expect(seen.find((p) => p.views['small']!.state === 'done' && p.views['big']!.fraction === 0)?.fraction).toBeCloseTo(0.1 / 1.1);
      expect(seen.at(-1)).toMatchObject({ definitionsVersion: 4, batchVersion: 9, outcome: 'published', fraction: 1, views: { small: { state: 'done', fraction: 1, extended: true }, big: { state: 'done', fraction: 1 } } });
      expect(await store.current()).toEqual(seen.at(-1));
    } finally {
      connection.closeSync();
      instance.closeSync();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
