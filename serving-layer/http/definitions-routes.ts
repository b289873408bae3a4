import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { UnknownDefinitionError, type ApplyOptions, type DefinitionKind, type DefinitionsAdmin } from '../../core/definitions/definitions-admin.ts';
import { definitionsSchema } from '../../core/definitions/definitions.ts';
import { redactDefinitions } from '../../core/definitions/redact-definitions.ts';
import { ConfigError, ConflictError } from '../../core/errors/index.ts';
import { HttpError } from './http-error.ts';

const entries = z.record(z.string(), z.unknown());
const applyBody = z.object({
  views: entries,
  alerts: entries.nullable().optional(),
  /** The version the set was read at (`lambda get definitions`); a newer current one is a 409. */
  expectedVersion: z.number().int().min(0).optional(),
  dryRun: z.boolean().optional(),
});
const changeQuery = z.object({
  expectedVersion: z.coerce.number().int().min(0).optional(),
  dryRun: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
});

/**
 * `GET /v1/definitions` (any reader; secrets of webhook sinks only to who passes `requireAdmin`)
 * and, behind `requireAdmin`: `PUT /v1/definitions` (the
 * whole set, as `lambda apply` sends it), `PUT`/`DELETE /v1/views/{name}` and
 * `/v1/alerts/{name}` (one entry; `?expectedVersion=N&dryRun=true` optional). Bodies are JSON or
 * YAML. Answers: 200 with `{version, previousVersion, applied, diff}`; 400 naming each key path
 * that is wrong (nothing changed); 404 deleting what is not there; 409 when the change was made
 * against a version that is no longer current; 503 when ZooKeeper does not answer.
 */
export function registerDefinitionsRoutes(app: FastifyInstance, admin: DefinitionsAdmin, requireAdmin: (request: FastifyRequest) => Promise<void>): void {
  app.get('/v1/definitions', async (request) => {
    const current = await admin.current();
    const definitions = current?.definitions ?? { views: {}, alerts: {} };
    // Whoever may change the definitions sees their secrets; a reader gets them redacted.
    const mayChange = await requireAdmin(request).then(() => true, () => false);
    return { version: current?.version ?? 0, publishedAtMs: current?.publishedAtMs ?? null, ...(mayChange ? definitions : redactDefinitions(definitions)) };
  });
  const change = { preHandler: requireAdmin };
  app.put('/v1/definitions', change, async (request) => {
    const body = parseBody(request.body, applyBody);
    const definitions = definitionsSchema.parse({ views: body.views, alerts: body.alerts ?? {} });
    return refusals(() => admin.apply(definitions, options(body)));
  });
  for (const kind of ['views', 'alerts'] as const satisfies readonly DefinitionKind[]) {
    app.put<{ Params: { name: string } }>(`/v1/${kind}/:name`, change, async (request) => {
      const definition = parseBody(request.body, z.record(z.string(), z.unknown()));
      return refusals(() => admin.put(kind, request.params.name, definition, options(parseQuery(request.query))));
    });
    app.delete<{ Params: { name: string } }>(`/v1/${kind}/:name`, change, async (request) =>
      refusals(() => admin.remove(kind, request.params.name, options(parseQuery(request.query)))),
    );
  }
}

function options(given: { expectedVersion?: number | undefined; dryRun?: boolean | undefined }): ApplyOptions {
  return { ...(given.expectedVersion === undefined ? {} : { expectedVersion: given.expectedVersion }), ...(given.dryRun ? { dryRun: true } : {}) };
}

/** The admin's refusals as HTTP answers; anything else (ZooKeeper unreachable: 503) goes to the error handler. */
async function refusals<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ConfigError) {
      const lines = error.issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message));
      throw new HttpError(400, `invalid definitions, nothing changed:\n  ${lines.join('\n  ')}`);
    }
    if (error instanceof ConflictError) throw new HttpError(409, error.message);
    if (error instanceof UnknownDefinitionError) throw new HttpError(404, error.message);
    throw error;
  }
}

/** A JSON body arrives parsed; any other (YAML, or JSON sent as text) as a string. */
function parseBody<T>(body: unknown, schema: z.ZodType<T>): T {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = parseYaml(body);
    } catch (error) {
      throw new HttpError(400, `the body is neither JSON nor YAML: ${(error as Error).message.split('\n')[0]}`);
    }
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new HttpError(400, `bad body${issue?.path.length ? ` at ${issue.path.join('.')}` : ''}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

function parseQuery(query: unknown): z.output<typeof changeQuery> {
  const parsed = changeQuery.safeParse(query ?? {});
  if (!parsed.success) throw new HttpError(400, `bad query parameter ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
