import { createReadStream } from 'node:fs';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import type { DefinitionsAdmin } from '../../core/definitions/definitions-admin.ts';
import type { Logger } from '../../core/observability/logger.ts';
import type { RunQuery } from '../query/query-result.ts';
import type { HealthInfo, StatusInfo, ViewInfo } from './api-types.ts';
import { adminAuth, bearerAuth } from './bearer-auth.ts';
import { registerDefinitionsRoutes } from './definitions-routes.ts';
import { registerEventsRoute, type Ingest } from './events-route.ts';
import { HttpError, toHttpError } from './http-error.ts';
import { queryMetrics, type QueryMetrics } from './query-metrics.ts';
import { registerQueryRoute } from './query-route.ts';
import { registerViewsRoute, type ViewsSettled } from './views-route.ts';

export interface HttpServerOptions {
  /** serving.host; 127.0.0.1 unless configured. */
  readonly host?: string;
  /** serving.port; 0 picks a free port (see `start()`'s answer). */
  readonly port: number;
  /** serving.token: when set, every route (console and /metrics included) requires it. */
  readonly token?: string;
  /** serving.adminToken: what changing definitions requires (see adminAuth); it also reads. */
  readonly adminToken?: string;
  /** `GET /v1/definitions` and the routes that change them; without it they answer 404. */
  readonly definitions?: DefinitionsAdmin;
  readonly logger: Logger;
  /** SQL and the views, on nodes with the serving role; without them those routes answer 404. */
  readonly query?: RunQuery;
  readonly views?: () => Promise<readonly ViewInfo[]>;
  /** `GET /v1/views?waitFor=N` (views-route.ts); without it, that answers 400. */
  readonly viewsSettled?: ViewsSettled;
  readonly status: () => Promise<StatusInfo>;
  /** `GET /v1/health`: 200 with the body while it answers, 503 once it throws (shutting down). */
  readonly health?: () => HealthInfo;
  /** Alert states for `GET /v1/alerts`; without it the route answers 404. */
  readonly alerts?: () => Promise<unknown>;
  readonly metrics: Registry;
  /** Single-node mode's `POST /v1/events`; without it the route answers 404. */
  readonly ingest?: Ingest;
  /** The web console's static files, served at `/`, and its vendor files at `/vendor/<name>`. */
  readonly console?: { readonly rootDir: string; readonly vendor?: Readonly<Record<string, string>> };
  /** Largest `POST /v1/query` body (default 1 MiB); larger ones get 413. */
  readonly queryBodyLimitBytes?: number;
  /** Largest `POST /v1/events` body (default 16 MiB). */
  readonly eventsBodyLimitBytes?: number;
}

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
  /** `http://host:port`, ready for clients. */
  readonly url: string;
}

export interface HttpServer {
  /** The fastify instance, for `inject()` in tests. */
  readonly app: FastifyInstance;
  start(): Promise<BoundAddress>;
  stop(): Promise<void>;
  /** Where it listens, once started. */
  readonly address: BoundAddress | undefined;
}

/**
 * The serving layer's HTTP API (DESIGN.md, "Interfaces"). Every error is `{"error": "…"}` with
 * 400 bad SQL or body, 401 token, 403 refused statement or token, 404, 408 timeout, 409 conflicting
 * change, 413 body too large, 503 retriable, 500 otherwise; a 500 never carries a stack trace,
 * which goes to the log instead.
 * `stop()` lets requests in flight finish (a query at most serving.queryTimeout).
 */
export function createHttpServer(options: HttpServerOptions): HttpServer {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.queryBodyLimitBytes ?? 1024 * 1024,
  });
  const metrics = queryMetrics(options.metrics);
  let address: BoundAddress | undefined;

  installErrorHandling(app);
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
  });
  if (options.token !== undefined) {
    void app.register(fastifyCookie);
    app.addHook('onRequest', bearerAuth(options.token, options.adminToken));
  }
  // Bodies of any type but JSON reach the handlers as text (so `curl -d` works); handlers validate.
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  registerRoutes(app, options, metrics);

  return {
    app,
    get address() {
      return address;
    },
    async start() {
      await app.listen({ host: options.host ?? '127.0.0.1', port: options.port });
      const bound = app.server.address();
      if (bound === null || typeof bound === 'string') throw new Error(`unexpected server address ${String(bound)}`);
      const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      address = { host: bound.address, port: bound.port, url: `http://${host}:${bound.port}` };
      options.logger.info({ url: address.url, token: options.token !== undefined }, 'serving HTTP');
      return address;
    },
    async stop() {
      await app.close();
      address = undefined;
    },
  };
}

function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const httpError = (error as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? bodyTooLarge(request) : toHttpError(error);
    if (httpError.statusCode >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    return reply.code(httpError.statusCode).headers(httpError.headers).send({ error: httpError.message });
  });
  app.setNotFoundHandler((request) => {
    throw new HttpError(404, `no such endpoint: ${request.method} ${request.url.split('?')[0]}`);
  });
}

/** 413 naming the route's limit (1 MiB for a query, 16 MiB of events by default). */
function bodyTooLarge(request: FastifyRequest): HttpError {
  const limitBytes = request.routeOptions.bodyLimit;
  const mib = limitBytes === undefined ? 'its' : `the ${+(limitBytes / 1024 / 1024).toFixed(2)} MiB`;
  return new HttpError(413, `the body is larger than ${mib} limit of ${request.method} ${request.url.split('?')[0]}`);
}

function registerRoutes(app: FastifyInstance, options: HttpServerOptions, metrics: QueryMetrics): void {
  const { query, views, health } = options;
  if (query) registerQueryRoute(app, query, metrics);
  if (views) registerViewsRoute(app, views, options.viewsSettled);
  app.get('/v1/status', async () => options.status());
  if (health) {
    app.get('/v1/health', async (_request, reply) => {
      const answer = health();
      return reply.code(answer.status === 'ok' ? 200 : 503).send(answer);
    });
  }
  const alerts = options.alerts;
  if (alerts) app.get('/v1/alerts', async () => alerts());
  app.get('/metrics', async (_request, reply) => reply.type(options.metrics.contentType).send(await options.metrics.metrics()));
  if (options.definitions) registerDefinitionsRoutes(app, options.definitions, adminAuth(options));
  if (options.ingest) registerEventsRoute(app, options.ingest, options.eventsBodyLimitBytes ?? 16 * 1024 * 1024);
  if (options.console) registerConsole(app, options.console);
}

/** The console's own .html/.css/.js files at `/` and the vendor files it names, nothing else. */
function registerConsole(app: FastifyInstance, console: NonNullable<HttpServerOptions['console']>): void {
  void app.register(fastifyStatic, {
    root: console.rootDir,
    prefix: '/',
    index: 'index.html',
    allowedPath: (pathName) => pathName === '/' || /^\/[\w.-]+\.(html|css|js)$/.test(pathName),
  });
  for (const [name, file] of Object.entries(console.vendor ?? {})) {
    const type = file.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8';
    app.get(`/vendor/${name}`, (_request, reply) => reply.type(type).header('cache-control', 'public, max-age=3600').send(createReadStream(file)));
  }
}
