import cron from 'node-cron';
import { z } from 'zod';
import { parseDurationMs } from './duration.ts';

/** Column types an event field may have; each maps 1:1 to a DuckDB type. */
export const FIELD_TYPES = ['VARCHAR', 'BOOLEAN', 'INTEGER', 'BIGINT', 'DOUBLE', 'TIMESTAMP', 'DATE'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const identifier = (what: string) =>
  z.string().regex(IDENTIFIER, `${what} must be a plain SQL identifier (letters, digits, _; not starting with a digit)`);

/** A duration such as `250ms`, `1s`, `5 minutes`; parsed to milliseconds. */
const duration = (opts: { minMs?: number } = {}) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const parsedMs = parseDurationMs(value);
    if (parsedMs === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration; write e.g. 250ms, 1s, 5m, 1h or "5 minutes"` });
      return z.NEVER;
    }
    if (opts.minMs !== undefined && parsedMs < opts.minMs) {
      ctx.addIssue({ code: 'custom', message: `${value} is below the minimum of ${opts.minMs}ms` });
      return z.NEVER;
    }
    return parsedMs;
  });

const fieldType = z
  .string()
  .transform((t) => t.trim().toUpperCase())
  .pipe(z.enum(FIELD_TYPES, { error: `must be one of ${FIELD_TYPES.join(', ')}` }));

const kafkaSource = z.strictObject({
  brokers: z.array(z.string().min(1)).min(1, 'list at least one broker as host:port'),
  topic: z.string().min(1),
  clientId: z.string().min(1).default('lambda-analytics'),
  ssl: z.boolean().default(false),
  /** Each consumer on a worker thread of its own (KafkaRecordSource). */
  fetchThread: z.boolean().default(true),
  sasl: z
    .strictObject({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string(),
      password: z.string(),
    })
    .optional(),
});

const source = z.strictObject({
  kafka: kafkaSource.optional(),
  timestamp: identifier('timestamp field'),
  schema: z.record(identifier('field name'), fieldType).refine((s) => Object.keys(s).length > 0, 'declare at least one field'),
});

const zookeeper = z.strictObject({
  connect: z.string().min(1),
  root: z
    .string()
    .regex(/^(\/[A-Za-z0-9_.-]+)+$/, 'must be an absolute ZooKeeper path such as /lambda/demo')
    .default('/lambda/default'),
  sessionTimeout: duration({ minMs: 1_000 }).default(10_000),
});

const storage = z.strictObject({
  dir: z.string().min(1).default('./data'),
  /**
   * Where a node keeps what it owns alone (alert store and outbox, DuckDB temp files), in
   * `<localDir>/<node.id>/`. Default: `<dir>/local` single-node, `./lambda-local` in a cluster.
   */
  localDir: z.string().min(1).optional(),
  keepVersions: z.number().int().min(1).default(3),
});

/** Node ids name directories and znodes: no slashes, no dot-only names. */
export const nodeIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'must be 1-100 letters, digits, "_", "." or "-", starting with a letter or digit');

const node = z.strictObject({
  /** Stable identity across restarts; default: $LAMBDA_NODE_ID, else the host name. */
  id: nodeIdSchema.optional(),
  /** SIGTERM/SIGINT: the process exits within this, reachable Kafka and ZooKeeper or not. */
  shutdownTimeout: duration({ minMs: 100 }).default(10_000),
});

const speed = z.strictObject({
  interval: duration({ minMs: 100 }).default(1_000),
  maxBatchRecords: z.number().int().min(1).default(100_000),
  blockSize: z.number().int().min(1).default(10_000),
  maxRejectedKept: z.number().int().min(0).default(10_000),
  /**
   * Rows of accepted events the speed layer keeps for `events` above the archive (a few seconds'
   * worth: the archiver writes every batch.archiveFlushInterval). When full, `events` lags the
   * views, and says so, until the archive reaches what was consumed.
   */
  maxEventsTail: z.number().int().min(0).default(1_000_000),
  /**
   * Rows of the newest archived events the tail keeps besides, so that queries over recent event
   * time read memory rather than Parquet (0: none; the archive's files serve them).
   */
  recentEvents: z.number().int().min(0).default(1_000_000),
});

const cronExpression = z.string().superRefine((expr, ctx) => {
  if (!cron.validate(expr)) ctx.addIssue({ code: 'custom', message: `"${expr}" is not a valid cron expression (5 fields, or 6 with seconds first)` });
});

const batch = z.strictObject({
  schedule: cronExpression.default('*/5 * * * *'),
  timezone: z.string().optional(),
  /** The archiver writes a partition's segment once its oldest buffered record waited this long. */
  archiveFlushInterval: duration({ minMs: 100 }).default(5_000),
  /**
   * Threads the batch recompute's DuckDB uses (default: every core). On a node that also runs the
   * speed layer, fewer leave it CPU during a recompute or a backfill: fresher views, longer runs.
   */
  threads: z.number().int().min(1).optional(),
});

/** Default of `serving.alertHistoryRetention`: 30 days. */
export const ALERT_HISTORY_RETENTION_MS = 30 * 24 * 3_600_000;

const serving = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65_535).default(8080),
  queryTimeout: duration({ minMs: 1 }).default(30_000),
  maxRows: z.number().int().min(1).default(100_000),
  memoryLimit: z.string().regex(/^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'write a size such as 512MB or 2GB').default('1GB'),
  token: z.string().min(8, 'a bearer token must be at least 8 characters').optional(),
  /** Needed to change views and alerts over HTTP (`lambda apply`); serving.token alone only reads. */
  adminToken: z.string().min(8, 'a bearer token must be at least 8 characters').optional(),
  /**
   * How long `alert_history` keeps transitions (default 30 days). Older rows are pruned about
   * hourly, except notifications a sink has not acknowledged yet (the outbox) and the newest row
   * of every pending or firing instance (its state across restarts).
   */
  alertHistoryRetention: duration({ minMs: 60_000 }).default(ALERT_HISTORY_RETENTION_MS),
});

const windowSpec = z.union([z.literal('none'), duration({ minMs: 1 })]);

const view = z.strictObject({
  window: windowSpec.default('none'),
  dimensions: z.array(identifier('dimension')).default([]),
  filter: z.string().min(1).optional(),
  measures: z
    .record(identifier('measure name'), z.string().min(1))
    .refine((m) => Object.keys(m).length > 0, 'declare at least one measure'),
});

const sink = z.union([
  z.strictObject({
    webhook: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    timeout: duration().default(5_000),
    headers: z.record(z.string(), z.string()).optional(),
  }),
  z.strictObject({ kafka: z.strictObject({ topic: z.string().min(1) }) }),
  z.strictObject({ log: z.boolean() }),
]);

const alert = z.strictObject({
  view: z.string().min(1),
  where: z.string().min(1).optional(),
  window: duration({ minMs: 1 }).optional(),
  condition: z.string().min(1),
  clear: z.string().min(1).optional(),
  for: duration().default(0),
  repeat: duration({ minMs: 1_000 }).optional(),
  severity: z.enum(['info', 'warning', 'critical']).default('warning'),
  labels: z.record(z.string(), z.string()).default({}),
  notify: z.array(sink).default([{ log: true }]),
});

export const configSchema = z.strictObject({
  source,
  node: node.default({ shutdownTimeout: 10_000 }),
  zookeeper: zookeeper.optional(),
  storage: storage.default({ dir: './data', keepVersions: 3 }),
  speed: speed.default({ interval: 1_000, maxBatchRecords: 100_000, blockSize: 10_000, maxRejectedKept: 10_000, maxEventsTail: 1_000_000, recentEvents: 1_000_000 }),
  batch: batch.default({ schedule: '*/5 * * * *', archiveFlushInterval: 5_000 }),
  serving: serving.default({ host: '127.0.0.1', port: 8080, queryTimeout: 30_000, maxRows: 100_000, memoryLimit: '1GB', alertHistoryRetention: ALERT_HISTORY_RETENTION_MS }),
  views: z.record(identifier('view name'), view).refine((v) => Object.keys(v).length > 0, 'declare at least one view'),
  alerts: z.record(identifier('alert name'), alert).default({}),
});

/** The validated configuration: durations in milliseconds, defaults filled in. */
export type Config = z.output<typeof configSchema>;
export type ViewConfig = Config['views'][string];
export type AlertConfig = Config['alerts'][string];
export type SinkConfig = AlertConfig['notify'][number];
