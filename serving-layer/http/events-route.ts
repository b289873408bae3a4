import type { FastifyInstance } from 'fastify';
import type { IngestResult } from '../ingest/event-ingest.ts';
import { HttpError } from './http-error.ts';

export type Ingest = (body: string) => Promise<IngestResult>;

/**
 * `POST /v1/events` (single-node mode): an NDJSON body of events, taken as text whatever its
 * content type. 200 with the counts when any line was accepted (bad lines are reported by line
 * number and do not stop the good ones); 400 when every line was rejected.
 */
export function registerEventsRoute(app: FastifyInstance, ingest: Ingest, bodyLimitBytes: number): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: bodyLimitBytes }, (_request, body, done) => done(null, body));
    scope.post('/v1/events', { bodyLimit: bodyLimitBytes }, async (request, reply) => {
      const body = typeof request.body === 'string' ? request.body : '';
      if (body.trim() === '') throw new HttpError(400, 'the body is empty; send events as NDJSON, one JSON object per line');
      const result = await ingest(body);
      if (result.accepted === 0 && result.rejected > 0) {
        return reply.code(400).send({ error: `all ${result.rejected} lines were rejected; see errors`, ...result });
      }
      return result;
    });
  });
}
