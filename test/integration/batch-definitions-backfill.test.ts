import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchLayer } from '../../batch-layer/batch-layer.ts';
import type { BatchManifest } from '../../core/batch/batch-manifest.ts';
import type { BatchProgress } from '../../core/batch/batch-progress.ts';
import { batchViewFile } from '../../core/batch/batch-version-files.ts';
import { loadConfigFile, validateConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import type { BatchRunOutcome } from '../../core/coordination/batch-run-requests.ts';
import type { BatchProgressStore } from '../../core/coordination/batch-progress-store.ts';
import { ZkLeaderElection } from '../../core/coordination/leader-election.ts';
import { LocalBatchManifestStore } from '../../core/coordination/local-batch-manifest-store.ts';
import { LocalBatchProgressStore } from '../../core/coordination/local-batch-progress-store.ts';
import { StandaloneLeaderElection } from '../../core/coordination/standalone-leader-election.ts';
import { ZkBatchManifestStore } from '../../core/coordination/zk-batch-manifest-store.ts';
import { ZkBatchProgressStore } from '../../core/coordination/zk-batch-progress-store.ts';
import { ZkSession } from '../../core/coordination/zk-session.ts';
import { installSqlMacros } from '../../core/duckdb/sql-macros.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import type { CompiledView } from '../../core/views/view-compiler.ts';
import { ZooKeeperTestServer, waitFor } from '../harness/index.ts';
import { expectBatchMatchesReference } from '../support/batch-assertions.ts';
import { writeSegments, type WrittenRecord } from '../support/batch-segments.ts';

const FOUNDATION = fileURLToPath(new URL('../fixtures/foundation.yaml', import.meta.url));
const TOPIC = 'clicks';
/** Midnight of January 1st: no scheduled run fires while the test runs, so every run is at once or asked for. */
const NEVER = '0 0 1 1 *';
const logger = createLogger('batch-definitions-backfill-test', { level: 'silent' });

/** The real ZooKeeper store, with every record it is given kept in order (a watcher may skip some). */
class RecordingProgressStore implements BatchProgressStore {
  readonly published: BatchProgress[] = [];
  constructor(private readonly store: ZkBatchProgressStore) {}
  async publish(progress: BatchProgress): Promise<void> {
    await this.store.publish(progress);
    this.published.push(progress);
  }
  clear(): Promise<void> {
    return this.store.clear();
  }
  current(): Promise<BatchProgress | undefined> {
    return this.store.current();
  }
  watch(listener: (progress: BatchProgress | undefined) => void): () => void {
    return this.store.watch(listener);
  }
}

describe('the batch master follows definitions and backfills at once (issue 16)', () => {
  let server: ZooKeeperTestServer;
  let dir: string;
  let layout: StorageLayout;
  let base: LoadedConfig;
  let reader: ZkSession;
  let manifests: ZkBatchManifestStore;
  let duckdb: DuckDBInstance;
  let connection: DuckDBConnection;
  const root = `/lambda/backfill-${randomBytes(4).toString('hex')}`;
  const written: WrittenRecord[] = [];
  const layers: BatchLayer[] = [];
  const sessions: ZkSession[] = [];
  const stores = new Map<string, RecordingProgressStore>();
  const outcomes = new Map<string, BatchRunOutcome[]>();

  /** foundation.yaml's source and storage with these views (from the file's, or written here) and no alerts. */
  function definitions(views: Record<string, unknown>): LoadedConfig {
    return validateConfig({ ...base.raw, views, alerts: {} });
  }
  const fileViews = () => base.raw['views'] as Record<string, Record<string, unknown>>;

  async function batchLayer(memberId: string, loaded: LoadedConfig, definitionsVersion: number): Promise<BatchLayer> {
    const session = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 2_000, logger });
    sessions.push(session);
    const progressStore = new RecordingProgressStore(new ZkBatchProgressStore(session, root, logger));
    stores.set(memberId, progressStore);
    const layer = await BatchLayer.create({
      loaded,
      layout,
      election: new ZkLeaderElection({ session, path: `${root}/election`, memberId, logger }),
      manifestStore: new ZkBatchManifestStore(session, root, logger),
      progressStore,
      definitionsVersion,
      logger,
      metrics: new Registry(),
      schedule: NEVER,
      topic: TOPIC,
    });
    outcomes.set(memberId, []);
    layer.onRun((outcome) => outcomes.get(memberId)!.push(outcome));
    layers.push(layer);
    await layer.start();
    return layer;
  }

  const published = async () => (await manifests.current())!;
  /** The outcome of `member`'s run that published `version` (heard after the publication). */
  const outcomeOf = async (member: string, version: number): Promise<BatchRunOutcome> => {
    await waitFor(`${member}'s run of version ${version}`, () => outcomes.get(member)!.some((o) => o.version === version));
    return outcomes.get(member)!.find((o) => o.version === version)!;
  };
  const waitForVersion = async (version: number): Promise<BatchManifest> => {
    await waitFor(`batch version ${version}`, async () => ((await manifests.current())?.version ?? 0) >= version, 30_000);
    return published();
  };

  /** Rows of the batch file, finalized by the view's own SQL, rounded for comparison. */
  async function batchRows(manifest: BatchManifest, view: CompiledView): Promise<unknown[][]> {
    const file = batchViewFile(dir, manifest, view.definition.name)!;
    const result = await connection.runAndReadAll(`SELECT * FROM (${view.finalizeSql(`read_parquet(${quoteLiteral(file)})`)}) ORDER BY ALL`);
    return result.getRowsJS().map(rounded);
  }

  /** The same view by hand-written SQL over the master dataset's Parquet below the manifest's cuts. */
  async function independentRows(manifest: BatchManifest, select: string, groupBy = 'country'): Promise<unknown[][]> {
    const below = Object.entries(manifest.cuts).map(([p, cut]) => `(_partition = ${p} AND _offset < ${cut})`);
    const result = await connection.runAndReadAll(`SELECT ${select} FROM read_parquet(${quoteLiteral(layout.masterGlob(TOPIC))}) WHERE ${below.join(' OR ')} GROUP BY ${groupBy} ORDER BY ALL`);
    return result.getRowsJS().map(rounded);
  }
  const rounded = (row: unknown[]) => row.map((v) => (typeof v === 'number' ? Math.round(v * 1e6) / 1e6 : typeof v === 'bigint' ? Number(v) : v));

  beforeAll(async () => {
    server = await ZooKeeperTestServer.start();
    dir = mkdtempSync(join(tmpdir(), 'batch-backfill-'));
    layout = new StorageLayout(dir);
    const file = await loadConfigFile(FOUNDATION);
    const raw = structuredClone(file.config) as unknown as Record<string, any>;
    base = validateConfig({ ...structuredClone(file.raw), storage: { dir, keepVersions: 3 }, speed: { ...raw['speed'], blockSize: 1_000 } });
    written.push(...(await writeSegments(layout, TOPIC, base.schema, { partition: 0, fromOffset: 0, toOffsetExclusive: 6_000, seed: 11 })));
    written.push(...(await writeSegments(layout, TOPIC, base.schema, { partition: 1, fromOffset: 0, toOffsetExclusive: 4_500, seed: 12 })));
    reader = await ZkSession.open({ connectString: server.connectString, sessionTimeoutMs: 5_000, logger });
    manifests = new ZkBatchManifestStore(reader, root, logger);
    duckdb = await DuckDBInstance.create(':memory:');
    connection = await duckdb.connect();
    await installSqlMacros(connection);
  });

  afterAll(async () => {
    for (const layer of layers) await layer.stop();
    for (const session of sessions) await session.close();
    connection?.closeSync();
    duckdb?.closeSync();
    await reader?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  let master: BatchLayer;

  it('adding a view starts a run at once that holds it as defined, exact, at the published cuts, taking the unchanged view as it is', async () => {
    master = await batchLayer('a', definitions({ page_traffic: fileViews()['page_traffic'] }), 1);
    await waitFor('a is master', async () => (await master.status()).isMaster);
    expect((await master.runNow()).version).toBe(1);
    const v1 = await published();
    expect(Object.keys(v1.views)).toEqual(['page_traffic']);
    // Newer events: the backfill run leaves them to the next scheduled run (the cuts stay), even
    // where the old cut (partition 1's 4,000) lies inside a segment that reaches past it.
    written.push(...(await writeSegments(layout, TOPIC, base.schema, { partition: 0, fromOffset: 6_000, toOffsetExclusive: 8_300, seed: 13 })));
    written.push(...(await writeSegments(layout, TOPIC, base.schema, { partition: 1, fromOffset: 4_500, toOffsetExclusive: 5_600, seed: 14 })));

    const withRevenue = definitions({ page_traffic: fileViews()['page_traffic'], revenue_by_country: fileViews()['revenue_by_country'] });
    await master.applyDefinitions(withRevenue, 2);
    const v2 = await waitForVersion(2);
    expect(await outcomeOf('a', 2)).toMatchObject({ ok: true, reason: 'definitions' });
    const revenue = withRevenue.views.find((v) => v.definition.name === 'revenue_by_country')!;
    const traffic = withRevenue.views.find((v) => v.definition.name === 'page_traffic')!;
    expect(v2.views['revenue_by_country']?.definitionHash).toBe(revenue.definitionHash);
    expect(v2.views['page_traffic']?.definitionHash).toBe(traffic.definitionHash);
    expect(v1.cuts).toEqual({ '0': 6_000, '1': 4_000 });
    expect(v2.cuts).toEqual(v1.cuts);
    // page_traffic's state is version 1's very file (hard-linked): nothing was recomputed for it.
    const [trafficV1, trafficV2] = [v1, v2].map((v) => statSync(batchViewFile(dir, v, 'page_traffic')!));
    expect(trafficV2!.ino).toBe(trafficV1!.ino);
    expect(v2.views['page_traffic']!.rows).toBe(v1.views['page_traffic']!.rows);

    expect(await batchRows(v2, revenue)).toEqual(await independentRows(v2, 'country, sum(amount)'));
    const covered = written.filter((w) => w.offset < v2.cuts[String(w.partition)]!);
    await expectBatchMatchesReference(connection, dir, v2, withRevenue.views, covered.flatMap((w) => (w.event ? [w.event] : [])));

    // Progress: planned with page_traffic extended, fractions never going back, finished as published.
    const records = stores.get('a')!.published.filter((p) => p.batchVersion === 2);
    expect(records[0]).toMatchObject({ definitionsVersion: 2, producedBy: 'a' });
    expect(records[0]!.views).toMatchObject({ page_traffic: { extended: true }, revenue_by_country: { state: 'pending', fraction: 0 } });
    expect(records[0]!.views['revenue_by_country']!.extended).toBeUndefined();
    const order = ['pending', 'running', 'done'];
    for (const view of ['page_traffic', 'revenue_by_country']) {
      const states = records.map((p) => order.indexOf(p.views[view]!.state));
      expect(states).toEqual([...states].sort((x, y) => x - y));
    }
    expect(records.some((p) => p.finishedAtMs === undefined && p.fraction > 0 && p.fraction < 1)).toBe(true);
    for (const key of ['fraction', 'page_traffic', 'revenue_by_country'] as const) {
      const series = records.map((p) => (key === 'fraction' ? p.fraction : p.views[key]!.fraction));
      expect(series).toEqual([...series].sort((x, y) => x - y));
    }
    expect(records.at(-1)).toMatchObject({ outcome: 'published', fraction: 1 });
    expect(records.filter((p) => p.finishedAtMs !== undefined)).toHaveLength(1);
    const observed = await new ZkBatchProgressStore(reader, root, logger).current();
    expect(observed).toEqual(records.at(-1));
    expect((await master.status()).progress).toEqual(records.at(-1));
    expect((await master.status()).definitionsVersion).toBe(2);
  });

  /** revenue_by_country with a measure added. */
  const changedRevenue = () => ({ ...fileViews()['revenue_by_country'], measures: { revenue: 'sum(amount)', orders: 'count(amount)' } });

  it('changing a measure recomputes the view at once under its new hash; removing a view drops it from the next version', async () => {
    const changed = definitions({ page_traffic: fileViews()['page_traffic'], revenue_by_country: changedRevenue() });
    const before = await published();
    await master.applyDefinitions(changed, 3);
    const v3 = await waitForVersion(3);
    expect(await outcomeOf('a', 3)).toMatchObject({ ok: true, reason: 'definitions' });
    const revenue = changed.views.find((v) => v.definition.name === 'revenue_by_country')!;
    expect(v3.views['revenue_by_country']!.definitionHash).toBe(revenue.definitionHash);
    expect(revenue.definitionHash).not.toBe(before.views['revenue_by_country']!.definitionHash);
    expect(v3.views['page_traffic']!.definitionHash).toBe(before.views['page_traffic']!.definitionHash);
    expect(await batchRows(v3, revenue)).toEqual(await independentRows(v3, 'country, sum(amount), count(amount)'));
    expect(stores.get('a')!.published.find((p) => p.batchVersion === 3)!.views['page_traffic']).toMatchObject({ extended: true });

    // A removal leaves nothing to backfill: no run at once; the next run's version lacks the view.
    const runs = outcomes.get('a')!.length;
    await master.applyDefinitions(definitions({ revenue_by_country: changedRevenue() }), 4);
    expect(outcomes.get('a')!.length).toBe(runs);
    expect((await master.status()).running).toBe(false);
    expect(await master.runNow()).toMatchObject({ ok: true, reason: 'requested', version: 4 });
    const v4 = await published();
    expect(Object.keys(v4.views)).toEqual(['revenue_by_country']);
    expect(await batchRows(v4, revenue)).toEqual(await independentRows(v4, 'country, sum(amount), count(amount)'));
  });

  it('a change during a run leaves that run its definitions and starts one more run right after it', async () => {
    const withTraffic = definitions({ revenue_by_country: changedRevenue(), page_traffic: fileViews()['page_traffic'] });
    const going = master.runNow();
    await master.applyDefinitions(withTraffic, 5);
    expect(await going).toMatchObject({ ok: true, reason: 'requested', version: 5 });
    expect(Object.keys((await waitForVersion(5)).views)).toEqual(['revenue_by_country']);
    expect(await outcomeOf('a', 6)).toMatchObject({ ok: true, reason: 'definitions' });
    const v6 = await published();
    const traffic = withTraffic.views.find((v) => v.definition.name === 'page_traffic')!;
    expect(v6.views['page_traffic']!.definitionHash).toBe(traffic.definitionHash);
    const covered = written.filter((w) => w.offset < v6.cuts[String(w.partition)]!);
    // The plain reduction knows foundation.yaml's views; the changed revenue_by_country's file holds their revenue state too.
    const reference = definitions({ page_traffic: fileViews()['page_traffic'], revenue_by_country: fileViews()['revenue_by_country'] });
    await expectBatchMatchesReference(connection, dir, v6, reference.views, covered.flatMap((w) => (w.event ? [w.event] : [])));
  });

  it('a candidate that is not master starts nothing on a change; once master, it backfills what the published version lacks', async () => {
    const running = { revenue_by_country: changedRevenue(), page_traffic: fileViews()['page_traffic'] };
    const candidate = await batchLayer('b', definitions(running), 6);
    const withUsers = definitions({ ...running, users_by_page: { window: 'none', dimensions: ['page'], measures: { users: 'approx_count_distinct(user_id)' } } });
    await candidate.applyDefinitions(withUsers, 7);
    expect(await candidate.status()).toMatchObject({ isMaster: false, master: 'a', running: false, definitionsVersion: 7 });
    expect(outcomes.get('b')).toEqual([]);
    expect((await published()).version).toBe(6);

    await master.stop();
    const v7 = await waitForVersion(7);
    expect(await outcomeOf('b', 7)).toMatchObject({ ok: true, reason: 'definitions' });
    expect(v7.producedBy).toBe('b');
    const users = withUsers.views.find((v) => v.definition.name === 'users_by_page')!;
    expect(v7.views['users_by_page']!.definitionHash).toBe(users.definitionHash);
    // 50 users: the sketch is exact at that size.
    expect(await batchRows(v7, users)).toEqual(await independentRows(v7, 'page, count(DISTINCT user_id)', 'page'));
    expect(Object.keys(v7.views).sort()).toEqual(['page_traffic', 'revenue_by_country', 'users_by_page']);
  });

  it('beside a serving role (a gate: its fills being built), the backfill starts once the gate settles, for the newest definitions only', async () => {
    const b = layers.at(-1)!;
    const running = { revenue_by_country: changedRevenue(), page_traffic: fileViews()['page_traffic'], users_by_page: { window: 'none', dimensions: ['page'], measures: { users: 'approx_count_distinct(user_id)' } } };
    const byCountry = (measures: Record<string, string>) => definitions({ ...running, users_by_country: { window: 'none', dimensions: ['country'], measures } });
    const gate = () => {
      let open!: () => void;
      let fail!: (error: Error) => void;
      const promise = new Promise<void>((resolve, reject) => ((open = resolve), (fail = reject)));
      return { promise, open, fail };
    };
    const v7 = await published();

    // Held: the definitions run at once, the backfill waits for the gate.
    const first = gate();
    const withCountry = byCountry({ users: 'approx_count_distinct(user_id)' });
    const applying = b.applyDefinitions(withCountry, 8, first.promise);
    await waitFor('b runs version 8', async () => (await b.status()).definitionsVersion === 8);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await b.status()).toMatchObject({ running: false, definitionsVersion: 8 });
    expect((await published()).version).toBe(v7.version);
    first.open();
    await applying;
    const v8 = await waitForVersion(8);
    expect(await outcomeOf('b', 8)).toMatchObject({ ok: true, reason: 'definitions' });
    expect(v8.views['users_by_country']!.definitionHash).toBe(withCountry.views.find((v) => v.definition.name === 'users_by_country')!.definitionHash);
    expect(await batchRows(v8, withCountry.views.find((v) => v.definition.name === 'users_by_country')!)).toEqual(await independentRows(v8, 'country, count(DISTINCT user_id)'));

    // A newer version while one waits: the newer one backfills; the older one, its gate open, starts nothing.
    const second = gate();
    const older = b.applyDefinitions(byCountry({ users: 'approx_count_distinct(user_id)', n: 'count(*)' }), 9, second.promise);
    await waitFor('b runs version 9', async () => (await b.status()).definitionsVersion === 9);
    const newest = byCountry({ users: 'approx_count_distinct(user_id)', n: 'count(user_id)' });
    await b.applyDefinitions(newest, 10);
    const v9 = await waitForVersion(9);
    expect(v9.views['users_by_country']!.definitionHash).toBe(newest.views.find((v) => v.definition.name === 'users_by_country')!.definitionHash);
    expect(await outcomeOf('b', 9)).toMatchObject({ ok: true, reason: 'definitions' });
    await waitFor('the run of version 9 to end', async () => !(await b.status()).running);
    const runs = outcomes.get('b')!.length;
    second.open();
    await older;
    expect((await b.status()).running).toBe(false);
    expect(outcomes.get('b')!.length).toBe(runs);

    // A gate that fails (the fills could not be built) does not keep the backfill from starting.
    const third = gate();
    const changedAgain = byCountry({ users: 'approx_count_distinct(user_id)', n: 'count(country)' });
    third.fail(new Error('the fills could not be built'));
    await b.applyDefinitions(changedAgain, 11, third.promise);
    const v10 = await waitForVersion(10);
    expect(await outcomeOf('b', 10)).toMatchObject({ ok: true, reason: 'definitions' });
    expect(v10.views['users_by_country']!.definitionHash).toBe(changedAgain.views.find((v) => v.definition.name === 'users_by_country')!.definitionHash);
  });
});

describe('single-node: a failed backfill is tried again without waiting for the schedule', () => {
  it('publishes the added view once the unreadable segment is readable again, the failure shown in the progress record', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'batch-backfill-retry-'));
    const layout = new StorageLayout(dir);
    const file = await loadConfigFile(FOUNDATION);
    const base = validateConfig({ ...structuredClone(file.raw), zookeeper: undefined, storage: { dir }, speed: { interval: '1s', blockSize: 1_000 } });
    const views = base.raw['views'] as Record<string, unknown>;
    const only = (names: string[]) => validateConfig({ ...base.raw, views: Object.fromEntries(names.map((n) => [n, views[n]])), alerts: {} });
    await writeSegments(layout, TOPIC, base.schema, { partition: 0, fromOffset: 0, toOffsetExclusive: 3_000, seed: 21 });
    const manifests = new LocalBatchManifestStore(layout, 20);
    const progressStore = new LocalBatchProgressStore();
    const outcomes: BatchRunOutcome[] = [];
    const layer = await BatchLayer.create({
      loaded: only(['page_traffic']),
      layout,
      election: new StandaloneLeaderElection('solo'),
      manifestStore: manifests,
      progressStore,
      definitionsVersion: 1,
      logger,
      metrics: new Registry(),
      schedule: NEVER,
      topic: TOPIC,
    });
    layer.onRun((outcome) => outcomes.push(outcome));
    try {
      await layer.start();
      await waitFor('master', async () => (await layer.status()).isMaster);
      expect(await layer.runNow()).toMatchObject({ ok: true, version: 1 });

      const segmentDir = layout.masterPartitionDir(TOPIC, 0);
      const victim = join(segmentDir, readdirSync(segmentDir).find((n) => n.endsWith('.parquet'))!);
      const original = readFileSync(victim);
      writeFileSync(victim, 'not parquet');
      await layer.applyDefinitions(only(['page_traffic', 'revenue_by_country']), 2);
      await waitFor('the backfill fails', () => outcomes.some((o) => o.reason === 'definitions' && !o.ok));
      expect(await progressStore.current()).toMatchObject({ definitionsVersion: 2, batchVersion: 2, outcome: 'failed' });
      expect((await manifests.current())?.version).toBe(1);

      writeFileSync(victim, original);
      await waitFor('the retried backfill', async () => (await manifests.current())?.views['revenue_by_country'] !== undefined, 30_000);
      // Its outcome is heard once the run has ended, a little after the publication.
      await waitFor('the retried backfill to end', () => outcomes.at(-1)?.ok === true);
      expect(outcomes.at(-1)).toMatchObject({ ok: true, reason: 'definitions' });
      expect(await progressStore.current()).toMatchObject({ definitionsVersion: 2, outcome: 'published', fraction: 1 });
      expect((await layer.status()).progress).toMatchObject({ outcome: 'published' });
    } finally {
      await layer.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
