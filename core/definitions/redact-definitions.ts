import type { ConfigIssue } from '../errors/index.ts';
import type { Definitions } from './definitions.ts';

/** What stands for a secret in definitions shown to readers. */
export const REDACTED = '<redacted>';

/**
 * The definitions as a reader (not the admin) may see them: webhook header values and the query
 * string and password of webhook URLs are secrets (as in `GET /v1/alerts`, which shows a sink's
 * origin and path only).
 */
export function redactDefinitions(definitions: Definitions): Definitions {
  const alerts = Object.fromEntries(
    Object.entries(definitions.alerts).map(([name, alert]) => {
      if (!isRecord(alert) || !Array.isArray(alert['notify'])) return [name, alert];
      return [name, { ...alert, notify: alert['notify'].map(redactSink) }];
    }),
  );
  return { views: definitions.views, alerts };
}

function redactSink(sink: unknown): unknown {
  if (!isRecord(sink) || typeof sink['webhook'] !== 'string') return sink;
  const headers = isRecord(sink['headers']) ? Object.fromEntries(Object.keys(sink['headers']).map((key) => [key, REDACTED])) : undefined;
  return { ...sink, webhook: redactUrl(sink['webhook']), ...(headers ? { headers } : {}) };
}

function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (!url.search && !url.password) return text;
    const user = url.username ? `${url.username}:${REDACTED}@` : '';
    return `${url.protocol}//${user}${url.host}${url.pathname}${url.search ? `?${REDACTED}` : ''}`;
  } catch {
    return text;
  }
}

/**
 * Where a set to be applied still holds a redacted secret (a reader's `lambda get definitions`
 * applied back): refused, or the secret would be replaced by the marker.
 */
export function redactedSecrets(definitions: Definitions): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const visit = (value: unknown, path: string): void => {
    if (typeof value === 'string' && value.includes(REDACTED)) {
      issues.push({ path, message: `holds ${REDACTED} from definitions read without the admin token; write the secret itself, or read them with the admin token` });
    } else if (Array.isArray(value)) value.forEach((item, i) => visit(item, `${path}.${i}`));
    else if (isRecord(value)) for (const [key, item] of Object.entries(value)) visit(item, `${path}.${key}`);
  };
  for (const [name, alert] of Object.entries(definitions.alerts)) visit(alert, `alerts.${name}`);
  return issues;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
