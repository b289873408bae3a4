import { Option, type Command } from 'commander';
import { formatDiff } from '../../core/definitions/definitions-diff.ts';
import { ServingClient } from '../../serving-layer/http/serving-client.ts';
import { readDefinitionsFile } from './definitions-file.ts';
import { nodeUrl } from './node-url.ts';
import { nodeOptions } from './query-command.ts';

/**
 * `lambda apply -f defs.yaml [--dry-run]`: makes the file's views and alerts the cluster's whole
 * set (declarative: what the file leaves out is removed). Prints the diff, then the new version.
 * A file printed by `lambda get definitions` carries its `version`: applied against a newer one,
 * it is refused (409) instead of undoing a change made meanwhile.
 */
export function registerApplyCommand(program: Command): void {
  nodeOptions(
    program
      .command('apply')
      .description("make a file's views and alerts the cluster's definitions: prints the diff (+ added, ~ changed, - removed), then applies")
      .requiredOption('-f, --file <file>', 'YAML with views: and alerts: (other keys, e.g. of a whole config file, are ignored)')
      .addOption(new Option('--dry-run', 'validate and print the diff only'))
      .addOption(new Option('--admin-token <token>', 'serving.adminToken of the node (else --token)').env('LAMBDA_ADMIN_TOKEN')),
  ).action(async (options: { file: string; dryRun?: boolean; url?: string; config?: string; token?: string; adminToken?: string }) => {
    const file = await readDefinitionsFile(options.file);
    const token = options.adminToken || options.token;
    const client = new ServingClient({ url: await nodeUrl(options), ...(token ? { token } : {}) });
    const outcome = await client.applyDefinitions({
      views: file.views,
      alerts: file.alerts,
      ...(file.version === undefined ? {} : { expectedVersion: file.version }),
      ...(options.dryRun ? { dryRun: true } : {}),
    });
    process.stdout.write(`${formatDiff(outcome.diff)}\n`);
    if (options.dryRun) process.stdout.write(`dry run: nothing applied; the definitions stay at version ${outcome.version}\n`);
    else if (outcome.applied) process.stdout.write(`applied: definitions version ${outcome.version} (was ${outcome.previousVersion}); every node follows it; added and changed views serve once backfilled (lambda status shows how far)\n`);
    else process.stdout.write(`nothing to apply; the definitions stay at version ${outcome.version}\n`);
  });
}
