import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { createLogger } from '../../core/observability/logger.ts';
import { createMetricsRegistry } from '../../core/observability/metrics.ts';
import { quoteLiteral } from '../../core/sql/identifiers.ts';
import { lockDownDatabase } from '../../serving-layer/query/lock-down-database.ts';
import { QueryRunner } from '../../serving-layer/query/query-runner.ts';
import type { StatusInfo, ViewInfo } from '../../serving-layer/http/api-types.ts';
import { createHttpServer, type HttpServer, type HttpServerOptions } from '../../serving-layer/http/http-server.ts';

/**
 * A serving node for tests, with no mocks: a real DuckDB database holding a view table and an
 * `events` view over Parquet files in a temp storage dir, locked down, behind the real HTTP
 * server on a free loopback port. Stands in for the engine until the lead's is wired.
 */
export interface ServingFixture {
  readonly url: string;
  readonly storageDir: string;
  readonly server: HttpServer;
  readonly runner: QueryRunner;
  close(): Promise<void>;
}

export interface ServingFixtureOptions {
  readonly token?: string;
  readonly queryTimeoutMs?: number;
  readonly maxRows?: number;
  readonly memoryLimit?: string;
  readonly poolSize?: number;
  readonly server?: Partial<Pick<HttpServerOptions, 'alerts' | 'ingest' | 'console' | 'queryBodyLimitBytes' | 'viewsSettled'>>;
}

export const FIXTURE_VIEWS: readonly ViewInfo[] = [
  {
    name: 'page_traffic',
    columns: [
      { name: 'window_start', type: 'TIMESTAMP' },
      { name: 'page', type: 'VARCHAR' },
      { name: 'views', type: 'BIGINT' },
      { name: 'revenue', type: 'DOUBLE' },
    ],
    state: 'serving',
    window: '1m',
    windowMs: 60_000,
    dimensions: ['page'],
    measures: [
      { name: 'views', aggregate: 'count', of: '*' },
      { name: 'revenue', aggregate: 'sum', of: 'amount' },
    ],
    rollup: 'rollup_page_traffic',
    freshness: { batchVersion: 3, realtimeUpdatedAtMs: 1_763_715_600_000, ageMs: 1_200 },
  },
];

export const FIXTURE_STATUS: StatusInfo = {
  nodeId: 'node-a',
  mode: 'cluster',
  roles: ['speed', 'batch', 'serving', 'archiver'],
  isMaster: true,
  batch: { version: 3, cuts: { '0': 20_000, '1': 10_000 }, publishedAtMs: 1_763_715_000_000, ageMs: 95_000, nextRunAtMs: null, lastError: null },
  lag: { records: 42, byPartition: { '0': 40, '1': 2 } },
  freshness: { realtimeUpdatedAtMs: 1_763_715_600_000, realtimeAgeMs: 800 },
  rejected: { total: 7, byReason: { invalid_json: 4, missing_timestamp: 3 }, notKept: 0 },
  refusedAtIngest: { total: 0, byReason: {} },
  members: [
    { id: 'node-a', roles: ['speed', 'batch', 'serving', 'archiver'], url: 'http://127.0.0.1:8080', isMaster: true, partitions: [0, 1] },
    { id: 'node-b', roles: ['serving'], url: 'http://127.0.0.1:8081', isMaster: false, partitions: [] },
  ],
  startedAtMs: 1_763_715_000_000,
};

export async function startServingFixture(options: ServingFixtureOptions = {}): Promise<ServingFixture> {
  const storageDir = mkdtempSync(join(tmpdir(), 'lambda-serving-'));
  const instance = await DuckDBInstance.create(':memory:');
  const admin = await instance.connect();
  const segmentDir = join(storageDir, 'master', 'clicks', 'p0');
  mkdirSync(segmentDir, { recursive: true });
  await admin.run(`COPY (SELECT TIMESTAMP '2026-11-21 09:00:00' + INTERVAL (i) SECOND AS ts, '/p' || (i % 3) AS page, i::DOUBLE AS amount,
      0 AS _partition, i::BIGINT AS _offset FROM range(100) t(i))
    TO ${quoteLiteral(join(segmentDir, 'clicks-p0-00000000000000000000-00000000000000000100.parquet'))} (FORMAT parquet)`);
  await admin.run(`CREATE VIEW events AS SELECT * FROM read_parquet(${quoteLiteral(join(storageDir, 'master', 'clicks', 'p*', '*.parquet'))})`);
  await admin.run(`CREATE TABLE page_traffic AS SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS window_start, page, count(*) AS views, sum(amount) AS revenue
    FROM events GROUP BY ALL`);
  await lockDownDatabase(admin, {
    allowedDirectories: [storageDir],
    memoryLimit: options.memoryLimit ?? '256MB',
    tempDirectory: join(storageDir, 'tmp'),
  });
  admin.closeSync();

  const runner = new QueryRunner(instance, {
    timeoutMs: options.queryTimeoutMs ?? 5_000,
    maxRows: options.maxRows ?? 10_000,
    poolSize: options.poolSize ?? 3,
  });
  const server = createHttpServer({
    port: 0,
    ...(options.token === undefined ? {} : { token: options.token }),
    logger: createLogger('serving-test', { level: process.env.LOG_LEVEL ?? 'fatal' }),
    query: (sql, queryOptions) => runner.run(sql, queryOptions),
    views: async () => FIXTURE_VIEWS,
    status: async () => FIXTURE_STATUS,
    metrics: createMetricsRegistry({ defaultMetrics: false }),
    ...options.server,
  });
  const { url } = await server.start();
  return {
    url,
    storageDir,
    server,
    runner,
    async close() {
      await server.stop();
      runner.close();
      instance.closeSync();
      rmSync(storageDir, { recursive: true, force: true });
    },
  };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: any;
}

/** `POST /v1/query` with `{"sql": sql}` (or `rawBody` as is). */
export function postQuery(url: string, sql: string, init: { accept?: string; token?: string; rawBody?: string; contentType?: string } = {}): Promise<HttpAnswer> {
  return request(`${url}/v1/query`, {
    method: 'POST',
    body: init.rawBody ?? JSON.stringify({ sql }),
    headers: {
      'content-type': init.contentType ?? 'application/json',
      ...(init.accept ? { accept: init.accept } : {}),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
  });
}

export async function request(url: string, init: RequestInit = {}): Promise<HttpAnswer> {
  const response = await fetch(url, init);
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}
