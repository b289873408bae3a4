import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../core/errors/index.ts';

const fileSchema = z.object({
  /** As `lambda get definitions` prints it: the version the set was read at. */
  version: z.number().int().min(0).optional(),
  views: z.record(z.string(), z.unknown(), { error: 'list the views as a map of name to definition' }),
  alerts: z.record(z.string(), z.unknown()).nullable().optional(),
});

/** What `lambda apply -f` sends: the file's whole set, and the version it was read at, if it says. */
export interface DefinitionsFile {
  readonly views: Record<string, unknown>;
  readonly alerts: Record<string, unknown>;
  readonly version?: number;
}

/**
 * Reads `views` and `alerts` (absent: none) from a YAML file; other top-level keys are ignored,
 * so a node's config file can be applied as it is. The node validates the definitions themselves.
 */
export async function readDefinitionsFile(file: string): Promise<DefinitionsFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ path: '', message: `cannot read ${file}: ${(error as Error).message}` }]);
  }
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) throw new ConfigError(document.errors.map((e) => ({ path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` })), { file });
  const parsed = fileSchema.safeParse(document.toJS() ?? {});
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })), { file });
  const { version, views, alerts } = parsed.data;
  return { views, alerts: alerts ?? {}, ...(version === undefined ? {} : { version }) };
}
