/**
 * DuckDB's error text, first line only: without the echoed SQL and caret that follow it, and
 * without the error-class prefix ("Binder Error: "), which says nothing a user can act on.
 */
export function duckDbMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0]!.replace(/^[A-Za-z ]+ Error: /, '').trim();
}
