import { Argument, Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { ServingClient } from '../../serving-layer/http/serving-client.ts';
import { nodeUrl } from './node-url.ts';
import { nodeOptions } from './query-command.ts';

/**
 * `lambda get definitions`: the cluster's current views and alerts as YAML, with the version
 * they were read at; an edited copy is what `lambda apply -f` takes back.
 */
export function registerGetCommand(program: Command): void {
  nodeOptions(
    program
      .command('get')
      .description("print the cluster's current definitions (views and alerts) as YAML, with their version")
      .addArgument(new Argument('<what>', 'what to print').choices(['definitions']))
      .addOption(new Option('--admin-token <token>', 'serving.adminToken of the node: shows the webhook secrets a reader sees redacted').env('LAMBDA_ADMIN_TOKEN')),
  ).action(async (_what: string, options: { url?: string; config?: string; token?: string; adminToken?: string }) => {
    const token = options.adminToken || options.token;
    const client = new ServingClient({ url: await nodeUrl(options), ...(token ? { token } : {}) });
    const { version, publishedAtMs, views, alerts } = await client.definitions();
    const published = publishedAtMs === null ? 'not published yet' : `published ${new Date(publishedAtMs).toISOString()}`;
    process.stdout.write(`# definitions version ${version}, ${published}\n# edit and run: lambda apply -f <this file> (refused if another change came first)\n`);
    process.stdout.write(stringify({ version, views, alerts }));
  });
}
