import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load-config.ts';
import { ConfigError } from '../errors/index.ts';
import { loadWithDefinitions } from './validate-definitions.ts';

const base = parseConfig('source: {timestamp: ts, schema: {ts: TIMESTAMP, page: VARCHAR, ms: DOUBLE}}\nviews: {v: {window: 1m, measures: {n: "count(*)"}}}\n');
const good = { views: { w: { window: '1m', dimensions: ['page'], measures: { top: 'max(ms)' } } }, alerts: {} };
/** Valid to the schema, refused only when bound in DuckDB: the column does not exist. */
const unbindable = { views: { w: { window: '1m', dimensions: ['page'], measures: { top: 'max(missing_column)' } } }, alerts: {} };

describe('loadWithDefinitions', () => {
  it('runs the definitions instead of the base config\'s, the same each time it is asked', async () => {
    const first = await loadWithDefinitions(base, good);
    expect(first.views.map((v) => v.definition.name)).toEqual(['w']);
    // Asked again (a node running what it validated before publishing): the same result.
    const again = await loadWithDefinitions(base, good);
    expect(again.config).toEqual(first.config);
  });

  it('refuses a definition that does not bind, every time, with its key path, even after a good one was bound', async () => {
    await loadWithDefinitions(base, good);
    for (let i = 0; i < 2; i++) {
      const refused = await loadWithDefinitions(base, unbindable).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ConfigError);
      expect(JSON.stringify((refused as ConfigError).issues)).toContain('views.w.measures.top');
    }
  });
});
