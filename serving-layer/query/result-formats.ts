import { stringify } from 'csv-stringify/sync';
import type { JsonValue, QueryResult } from './query-result.ts';

export const RESULT_FORMATS = ['json', 'csv', 'ndjson'] as const;
export type ResultFormat = (typeof RESULT_FORMATS)[number];

export const MEDIA_TYPES: Readonly<Record<ResultFormat, string>> = {
  json: 'application/json',
  csv: 'text/csv',
  ndjson: 'application/x-ndjson',
};

/**
 * RFC 4180 CSV with a header row and CRLF line ends. NULL is an empty field and the empty string
 * a quoted one (`""`), as PostgreSQL's COPY writes them; lists and structs are JSON text.
 */
export function renderCsv(result: QueryResult): string {
  const header = result.columns.map((c) => c.name);
  const rows = result.rows.map((row) => row.map(csvField));
  // quoted_match /^$/ quotes the empty string only; NULL (null) stays an empty field.
  return stringify([header, ...rows], { record_delimiter: 'windows', quote_record_delimiter: true, quoted_match: /^$/ });
}

/** One JSON object per row, keyed by column name (repeated names get `_1`, `_2`… as DuckDB does). */
export function renderNdjson(result: QueryResult): string {
  const names = uniqueNames(result.columns.map((c) => c.name));
  let out = '';
  for (const row of result.rows) {
    const record: Record<string, JsonValue> = {};
    names.forEach((name, i) => (record[name] = row[i] ?? null));
    out += `${JSON.stringify(record)}\n`;
  }
  return out;
}

function csvField(value: JsonValue): string | null {
  if (value === null) return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function uniqueNames(names: readonly string[]): string[] {
  const seen = new Set<string>();
  return names.map((name) => {
    let unique = name;
    for (let n = 1; seen.has(unique); n++) unique = `${name}_${n}`;
    seen.add(unique);
    return unique;
  });
}
