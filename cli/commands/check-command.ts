import { DuckDBInstance } from '@duckdb/node-api';
import type { Command } from 'commander';
import { formatExactDurationMs } from '../../core/config/duration.ts';
import { loadConfigFile } from '../../core/config/load-config.ts';
import { DISTINCT_SKETCH_MACROS } from '../../core/views/distinct-sketch.ts';
import { bindViews, type BoundView } from '../../core/views/bind-views.ts';
import { rollupCallSql } from '../../core/views/view-rollup.ts';

/** `lambda check --config FILE`: validate a config and print each view's compiled SQL. */
export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .description("validate a config file and print each view's compiled partial, merge and finalize SQL")
    .requiredOption('-c, --config <file>', 'the YAML config file')
    .action(async (options: { config: string }) => {
      const loaded = await loadConfigFile(options.config);
      const instance = await DuckDBInstance.create(':memory:');
      const connection = await instance.connect();
      try {
        const bound = await bindViews(loaded, connection);
        process.stdout.write(`${options.config}: valid (${bound.length} views, ${Object.keys(loaded.config.alerts).length} alerts)\n`);
        process.stdout.write(`\n-- macros the compiled SQL uses (installed on every DuckDB connection)\n${DISTINCT_SKETCH_MACROS.map((m) => `${m.replace(/\n\s+/g, ' ')};`).join('\n')}\n`);
        for (const view of bound) process.stdout.write(describeView(view));
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    });
}

function describeView(bound: BoundView): string {
  const { view, outputColumns } = bound;
  const { name, windowMs } = view.definition;
  const window = windowMs === null ? 'none (running totals)' : formatExactDurationMs(windowMs);
  const columns = outputColumns.map((c) => `${c.name} ${c.type}`).join(', ');
  return [
    '',
    `== view ${name} (window: ${window}, definition ${view.definitionHash})`,
    `columns: ${columns}`,
    '-- partial: events -> mergeable state per key',
    `${view.partialSql('events')};`,
    `-- merge: partial states -> one state per key`,
    `${view.mergeSql(`${name}__partial`)};`,
    '-- finalize: merged state -> view columns',
    `${view.finalizeSql(`${name}__merged`)};`,
    '-- rollup: the view re-aggregated exactly over fewer dimensions, into longer or sliding windows (serving nodes)',
    `SELECT * FROM ${rollupCallSql(bound)};`,
    '',
  ].join('\n');
}
