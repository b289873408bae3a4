import Negotiator from 'negotiator';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { QueryError } from '../../core/errors/index.ts';
import type { RunQuery } from '../query/query-result.ts';
import { MEDIA_TYPES, renderCsv, renderNdjson, type ResultFormat } from '../query/result-formats.ts';
import { HttpError } from './http-error.ts';
import type { QueryMetrics } from './query-metrics.ts';

const queryBody = z.object({
  sql: z.string({ error: 'give the query as a string: {"sql": "SELECT …"}' }).min(1, 'the query is empty'),
});

const OFFERED = [MEDIA_TYPES.json, MEDIA_TYPES.csv, MEDIA_TYPES.ndjson];
const FORMAT_BY_MEDIA_TYPE = new Map(Object.entries(MEDIA_TYPES).map(([format, type]) => [type, format as ResultFormat]));

/**
 * `POST /v1/query` `{"sql": "…"}` → `{"columns": [{"name", "type"}], "rows": [[…]], "truncated"}`,
 * or CSV / NDJSON when the Accept header prefers them. `X-Lambda-Truncated` says in every format
 * whether the rows were cut at serving.maxRows, and `eventsLagging` / `X-Lambda-Events-Lagging`
 * whether `events` lagged the views (see QueryResult). A client that disconnects cancels its query.
 */
export function registerQueryRoute(app: FastifyInstance, query: RunQuery, metrics: QueryMetrics): void {
  app.post('/v1/query', async (request, reply) => {
    const { sql } = parseBody(request.body);
    const format = negotiateFormat(request);
    metrics.queries.inc({ format });
    const endTimer = metrics.durationSeconds.startTimer();
    const cancel = cancelOnDisconnect(reply);
    try {
      const result = await query(sql, { signal: cancel.signal });
      endTimer({ outcome: 'ok' });
      metrics.rowsReturned.inc(result.rows.length);
      if (result.truncated) metrics.truncated.inc();
      reply.header('x-lambda-truncated', String(result.truncated)).header('x-lambda-row-count', String(result.rows.length));
      if (result.eventsLagging !== undefined) reply.header('x-lambda-events-lagging', String(result.eventsLagging));
      if (format === 'csv') return reply.type(`${MEDIA_TYPES.csv}; charset=utf-8; header=present`).send(renderCsv(result));
      if (format === 'ndjson') return reply.type(MEDIA_TYPES.ndjson).send(renderNdjson(result));
      const lagging = result.eventsLagging === undefined ? {} : { eventsLagging: result.eventsLagging };
      return reply.type(MEDIA_TYPES.json).send(JSON.stringify({ columns: result.columns, rows: result.rows, truncated: result.truncated, ...lagging }));
    } catch (error) {
      const kind = error instanceof QueryError ? error.kind : 'internal';
      endTimer({ outcome: kind });
      metrics.errors.inc({ kind });
      throw error;
    } finally {
      cancel.dispose();
    }
  });
}

/** The body as JSON whatever its declared content type, so `curl -d '{"sql": …}'` works too. */
function parseBody(body: unknown): z.infer<typeof queryBody> {
  let value = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      value = JSON.parse(body.toString());
    } catch {
      throw new HttpError(400, 'the body must be JSON: {"sql": "SELECT …"}');
    }
  }
  const parsed = queryBody.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const at = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new HttpError(400, `bad request body: ${at}${issue.message}; send {"sql": "SELECT …"}`);
  }
  return parsed.data;
}

/** JSON unless the Accept header prefers CSV or NDJSON; an Accept offering none of them gets JSON too. */
function negotiateFormat(request: FastifyRequest): ResultFormat {
  const mediaType = new Negotiator(request.raw).mediaType(OFFERED);
  return (mediaType ? FORMAT_BY_MEDIA_TYPE.get(mediaType) : undefined) ?? 'json';
}

function cancelOnDisconnect(reply: FastifyReply): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onClose = () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  };
  reply.raw.on('close', onClose);
  return { signal: controller.signal, dispose: () => reply.raw.off('close', onClose) };
}
