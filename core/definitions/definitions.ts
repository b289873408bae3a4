import { z } from 'zod';

/**
 * The cluster's views and alerts (DESIGN.md, "Definitions are cluster state"), kept as written
 * (durations as `5m`, defaults left out) so that `lambda get definitions` prints what was applied.
 * Each entry is validated with the node's config (configSchema, then bound in DuckDB) before it
 * is published; the document itself only promises these two maps.
 */
export interface Definitions {
  readonly views: Readonly<Record<string, unknown>>;
  readonly alerts: Readonly<Record<string, unknown>>;
}

/** One published set: `version` counts from 1 (the seed) and rises by one per change. */
export interface PublishedDefinitions {
  readonly version: number;
  readonly definitions: Definitions;
  readonly publishedAtMs: number;
}

const entries = z.record(z.string(), z.unknown());

/** `views` and `alerts` of a YAML or JSON document; any other top-level key is ignored. */
export const definitionsSchema = z.object({
  views: entries.default({}),
  alerts: entries.nullable().default({}).transform((alerts) => alerts ?? {}),
});

const publishedSchema = z.object({
  version: z.number().int().min(1),
  publishedAtMs: z.number(),
  views: entries,
  alerts: entries,
});

export function serializePublishedDefinitions(published: PublishedDefinitions): Buffer {
  const { version, publishedAtMs, definitions } = published;
  return Buffer.from(JSON.stringify({ version, publishedAtMs, views: definitions.views, alerts: definitions.alerts }));
}

export function parsePublishedDefinitions(data: Buffer): PublishedDefinitions {
  const { version, publishedAtMs, views, alerts } = publishedSchema.parse(JSON.parse(data.toString('utf8')));
  return { version, publishedAtMs, definitions: { views, alerts } };
}

/** The views and alerts of a config document as written (the seed of an empty cluster). */
export function definitionsOfDocument(document: Readonly<Record<string, unknown>>): Definitions {
  return definitionsSchema.parse({ views: document['views'] ?? {}, alerts: document['alerts'] ?? {} });
}
