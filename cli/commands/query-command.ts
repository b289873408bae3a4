import Table from 'cli-table3';
import { Option, type Command } from 'commander';
import type { JsonValue, QueryResult } from '../../serving-layer/query/query-result.ts';
import { ServingClient } from '../../serving-layer/http/serving-client.ts';
import { nodeUrl } from './node-url.ts';

const FORMATS = ['table', 'json', 'csv', 'ndjson'] as const;
type OutputFormat = (typeof FORMATS)[number];

/** Options shared by the commands that talk to a running node. */
export function nodeOptions(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', "the node's HTTP address").env('LAMBDA_URL').default(undefined, 'http://127.0.0.1:$PORT, else serving.port of --config, else 8080'))
    .addOption(new Option('-c, --config <file>', 'the config the node runs with, for its address (default: $LAMBDA_CONFIG)'))
    .addOption(new Option('--token <token>', 'bearer token, when the node sets serving.token').env('LAMBDA_TOKEN'));
}

/** `lambda query "SQL" [--format table|json|csv|ndjson]`: run SQL on a running node and print the answer. */
export function registerQueryCommand(program: Command): void {
  nodeOptions(
    program
      .command('query')
      .description('run one SELECT on a running node (POST /v1/query) and print the result')
      .argument('<sql>', 'the query; - reads it from standard input')
      .addOption(new Option('-f, --format <format>', 'output format').choices(FORMATS).default('table')),
  ).action(async (sqlArgument: string, options: { format: OutputFormat; url?: string; config?: string; token?: string }) => {
    const sql = sqlArgument === '-' ? await readStdin() : sqlArgument;
    const client = new ServingClient({ url: await nodeUrl(options), ...(options.token ? { token: options.token } : {}) });
    if (options.format !== 'table') {
      const { text, truncated, rowCount } = await client.queryText(sql, options.format);
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      if (truncated) process.stderr.write(truncationWarning(rowCount));
      return;
    }
    const result = await client.query(sql);
    process.stdout.write(renderTable(result));
    if (result.truncated) process.stderr.write(truncationWarning(result.rows.length));
  });
}

/** On stderr, so that the rows on stdout stay exactly what the node sent. */
export function truncationWarning(rowCount: number): string {
  return `lambda: warning: the answer was truncated at serving.maxRows (${rowCount} rows); add a LIMIT or aggregate to see everything\n`;
}

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL)/;

/** Aligned columns (numbers right), NULL spelled out, then the row count as psql prints it. */
export function renderTable(result: QueryResult): string {
  const table = new Table({
    head: result.columns.map((c) => c.name),
    colAligns: result.columns.map((c) => (NUMERIC.test(c.type) ? 'right' : 'left')),
    style: { head: [], border: [], compact: true },
  });
  for (const row of result.rows) table.push(row.map(cell));
  const count = `(${result.rows.length} ${result.rows.length === 1 ? 'row' : 'rows'}${result.truncated ? ', truncated at serving.maxRows' : ''})`;
  return `${table.toString()}\n${count}\n`;
}

function cell(value: JsonValue): string {
  if (value === null) return 'NULL';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
