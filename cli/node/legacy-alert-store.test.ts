import { DuckDBInstance } from '@duckdb/node-api';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../test/support/memory-logger.ts';
import { adoptLegacyAlertStore } from './legacy-alert-store.ts';

describe('adoptLegacyAlertStore', () => {
  let dir: string;
  let storageDir: string;
  let localDir: string;
  const legacy = () => join(storageDir, 'alerts', 'alerts.duckdb');
  const target = () => join(localDir, 'alerts', 'alerts.duckdb');

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'legacy-alerts-'));
    storageDir = join(dir, 'shared');
    localDir = join(storageDir, 'local', 'node-a');
    mkdirSync(join(storageDir, 'alerts'), { recursive: true });
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('moves a single node\'s store into its local dir, where its rows are read again', async () => {
    const instance = await DuckDBInstance.create(legacy());
    const connection = await instance.connect();
    await connection.run('CREATE TABLE alert_history AS SELECT range AS seq FROM range(5)');
    connection.closeSync();
    instance.closeSync();
    const { logger, lines } = memoryLogger('legacy-test');
    await adoptLegacyAlertStore({ storageDir, localDir, cluster: false, logger });
    expect(existsSync(legacy())).toBe(false);
    const moved = await DuckDBInstance.create(target());
    const reader = await moved.connect();
    expect((await reader.runAndReadAll('SELECT count(*)::INTEGER FROM alert_history')).getRowsJS()).toEqual([[5]]);
    reader.closeSync();
    moved.closeSync();
    expect(lines.some((l) => l.msg.includes('moved the alert store'))).toBe(true);
  });

  it('moves the write-ahead log with it', async () => {
    writeFileSync(legacy(), 'db');
    writeFileSync(`${legacy()}.wal`, 'wal');
    const { logger } = memoryLogger('legacy-test');
    await adoptLegacyAlertStore({ storageDir, localDir, cluster: false, logger });
    expect(existsSync(`${target()}.wal`)).toBe(true);
    expect(existsSync(`${legacy()}.wal`)).toBe(false);
  });

  it('leaves the shared store alone in a cluster, or when the node already has one, and says so', async () => {
    writeFileSync(legacy(), 'db');
    const { logger, lines } = memoryLogger('legacy-test');
    await adoptLegacyAlertStore({ storageDir, localDir, cluster: true, logger });
    expect(existsSync(legacy())).toBe(true);
    expect(existsSync(target())).toBe(false);
    mkdirSync(join(localDir, 'alerts'), { recursive: true });
    writeFileSync(target(), 'newer');
    await adoptLegacyAlertStore({ storageDir, localDir, cluster: false, logger });
    expect(existsSync(legacy())).toBe(true);
    expect(lines.filter((l) => l.level === 40 && l.msg.includes(legacy()))).toHaveLength(2);
  });

  it('does nothing when there is no legacy store', async () => {
    rmSync(join(storageDir, 'alerts'), { recursive: true });
    const { logger, lines } = memoryLogger('legacy-test');
    await adoptLegacyAlertStore({ storageDir, localDir, cluster: false, logger });
    expect(existsSync(join(localDir, 'alerts'))).toBe(false);
    expect(lines).toEqual([]);
  });
});
