import { Option, type Command } from 'commander';
import { formatDurationMs } from '../../core/config/duration.ts';
import { formatDiff } from '../../core/definitions/definitions-diff.ts';
import { LambdaError } from '../../core/errors/index.ts';
import type { ViewInfo } from '../../serving-layer/http/api-types.ts';
import { ServingClient } from '../../serving-layer/http/serving-client.ts';
import { readDefinitionsFile } from './definitions-file.ts';
import { nodeUrl } from './node-url.ts';
import { durationMs } from './option-parsers.ts';
import { nodeOptions } from './query-command.ts';

/**
 * `lambda apply -f defs.yaml [--dry-run]`: makes the file's views and alerts the cluster's whole
 * set (declarative: what the file leaves out is removed). Prints the diff, then the new version.
 * A file printed by `lambda get definitions` carries its `version`: applied against a newer one,
 * it is refused (409) instead of undoing a change made meanwhile. With `--wait` it returns only
 * once the node serves that version with every view exact (like `kubectl rollout status`),
 * printing the backfills' progress meanwhile, and fails if `--timeout` ends first.
 */
export function registerApplyCommand(program: Command): void {
  nodeOptions(
    program
      .command('apply')
      .description("make a file's views and alerts the cluster's definitions: prints the diff (+ added, ~ changed, - removed), then applies")
      .requiredOption('-f, --file <file>', 'YAML with views: and alerts: (other keys, e.g. of a whole config file, are ignored)')
      .addOption(new Option('--dry-run', 'validate and print the diff only'))
      .addOption(new Option('--wait', 'return once the node serves the new definitions, every view exact (added and changed views backfilled)'))
      .addOption(new Option('--timeout <duration>', 'with --wait: fail (exit 1) if the views do not serve within it').argParser(durationMs).default(600_000, '10m'))
      .addOption(new Option('--admin-token <token>', 'serving.adminToken of the node (else --token)').env('LAMBDA_ADMIN_TOKEN')),
  ).action(async (options: { file: string; dryRun?: boolean; wait?: boolean; timeout: number; url?: string; config?: string; token?: string; adminToken?: string }) => {
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
    if (options.wait && !options.dryRun) await waitUntilServing(client, outcome.version, options.timeout, (line) => process.stdout.write(`${line}\n`));
  });
}

/** The longest single blocking read: progress is printed at least this often. */
const WAIT_STEP_MS = 5_000;

/**
 * Waits (blocking reads of `GET /v1/views?waitFor=`) until the node serves definitions `version`
 * with every view exact, printing which views still backfill, and how far, whenever that changes.
 * Throws when `timeoutMs` ends first, naming the views still backfilling.
 */
export async function waitUntilServing(
  client: Pick<ServingClient, 'waitForViews'>,
  version: number,
  timeoutMs: number,
  print: (line: string) => void,
  now: () => number = Date.now,
): Promise<void> {
  const startedAt = now();
  let last = '';
  for (;;) {
    const remaining = startedAt + timeoutMs - now();
    const { views, settled } = await client.waitForViews(version, Math.max(0, Math.min(WAIT_STEP_MS, remaining)));
    if (settled) {
      print(`serving: definitions version ${version}, every view exact (waited ${formatDurationMs(now() - startedAt)})`);
      return;
    }
    const backfilling = describeBackfills(views);
    if (startedAt + timeoutMs - now() <= 0) {
      throw new LambdaError(`timed out after ${formatDurationMs(timeoutMs)} waiting for definitions version ${version} to serve${backfilling ? `; still backfilling: ${backfilling}` : ' (this node does not run it yet)'}`);
    }
    const line = backfilling ? `waiting: backfilling ${backfilling}` : `waiting: the node does not run definitions version ${version} yet`;
    if (line !== last) print(line);
    last = line;
  }
}

/** `a 42% (added), b 7% (changed)`: the views whose next definition is not exact yet. */
function describeBackfills(views: readonly ViewInfo[]): string {
  return views
    .filter((v) => v.backfill)
    .map((v) => `${v.name} ${Math.floor(v.backfill!.progress * 100)}% (${v.backfill!.kind})`)
    .join(', ');
}
