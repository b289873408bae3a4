import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseDurationMs } from '../../core/config/duration.ts';
import type { ViewInfo, ViewsAnswer } from './api-types.ts';
import { HttpError } from './http-error.ts';

/** How long one `GET /v1/views?waitFor=N` may wait: 30 s unless `timeout` says otherwise, at most 5 minutes. */
export const VIEWS_WAIT_DEFAULT_MS = 30_000;
export const VIEWS_WAIT_MAX_MS = 300_000;

/**
 * Resolves true once this node serves definitions version `version` or a later one with no view
 * backfilling; false when `timeoutMs` ends or `signal` aborts first.
 */
export type ViewsSettled = (version: number, timeoutMs: number, signal: AbortSignal) => Promise<boolean>;

const waitQuery = z.object({
  waitFor: z.coerce.number().int().min(0).optional(),
  timeout: z
    .string()
    .optional()
    .transform((text, context) => {
      if (text === undefined) return VIEWS_WAIT_DEFAULT_MS;
      const ms = parseDurationMs(text);
      if (ms === undefined || ms > VIEWS_WAIT_MAX_MS) {
        context.addIssue({ code: 'custom', message: `"${text}" is not a duration of at most 5m (e.g. 30s)` });
        return z.NEVER;
      }
      return ms;
    }),
});

/**
 * `GET /v1/views`: the views this node serves and those still backfilling. With `?waitFor=N`
 * (a definitions version, as `PUT /v1/definitions` answers it) and `timeout` (default 30s, at most
 * 5m) it is a blocking read, like Consul's: it answers once the node serves version N or later
 * with every view exact, `settled: true`, or at the timeout with `settled: false` and the views as
 * they are then (progress included). What `lambda apply --wait` runs, instead of polling.
 */
export function registerViewsRoute(app: FastifyInstance, views: () => Promise<readonly ViewInfo[]>, settled?: ViewsSettled): void {
  // Closing the server waits for the requests in flight: a blocking read answers at once then
  // (`settled: false`), so that it never holds a node's shutdown up.
  const closing = new AbortController();
  app.addHook('preClose', async () => closing.abort());
  app.get('/v1/views', async (request, reply): Promise<ViewsAnswer> => {
    const parsed = waitQuery.safeParse(request.query ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HttpError(400, `bad query parameter ${issue?.path.join('.')}: ${issue?.message}`);
    }
    const { waitFor, timeout } = parsed.data;
    if (waitFor === undefined) return { views: await views() };
    if (!settled) throw new HttpError(400, 'this node cannot wait for views (waitFor): it serves none');
    // The client gone (its own timeout, ^C): stop waiting for it.
    const gone = new AbortController();
    const onClose = () => gone.abort();
    reply.raw.once('close', onClose);
    try {
      const outcome = await settled(waitFor, timeout, AbortSignal.any([gone.signal, closing.signal]));
      return { views: await views(), settled: outcome };
    } finally {
      reply.raw.off('close', onClose);
    }
  });
}
