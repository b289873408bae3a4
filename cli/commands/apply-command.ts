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
 * once every serving node of the cluster serves that version with every view exact (like
 * `kubectl rollout status`), printing the backfills' progress meanwhile, and fails if `--timeout`
 * ends first.
 */
export function registerApplyCommand(program: Command): void {
  nodeOptions(
    program
      .command('apply')
      .description("make a file's views and alerts the cluster's definitions: prints the diff (+ added, ~ changed, - removed), then applies")
      .requiredOption('-f, --file <file>', 'YAML with views: and alerts: (other keys, e.g. of a whole config file, are ignored)')
      .addOption(new Option('--dry-run', 'validate and print the diff only'))
      .addOption(new Option('--wait', 'return once every serving node serves the new definitions, every view exact (added and changed views backfilled)'))
      .addOption(new Option('--timeout <duration>', 'with --wait (implied): fail (exit 1) if the views do not serve within it').argParser(durationMs).default(600_000, '10m').implies({ wait: true }))
      .addOption(new Option('--admin-token <token>', 'serving.adminToken of the node (else --token)').env('LAMBDA_ADMIN_TOKEN')),
  ).action(async (options: { file: string; dryRun?: boolean; wait?: boolean; timeout: number; url?: string; config?: string; token?: string; adminToken?: string }) => {
    const file = await readDefinitionsFile(options.file);
    const token = options.adminToken || options.token;
    const url = await nodeUrl(options);
    const client = new ServingClient({ url, ...(token ? { token } : {}) });
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
    if (options.wait && !options.dryRun) {
      const nodes = await servingNodes(client, url, token);
      await waitUntilServing(nodes, outcome.version, options.timeout, (line) => process.stdout.write(`${line}\n`));
    }
  });
}

/** The longest single blocking read: progress is printed at least this often. */
const WAIT_STEP_MS = 5_000;
/** Before asking an unreachable node again. */
const UNREACHABLE_RETRY_MS = 1_000;

/** A serving node to wait on: its member id and a client of its HTTP address. */
export interface ServingNode {
  readonly id: string;
  readonly client: Pick<ServingClient, 'waitForViews'>;
}

/**
 * The nodes `lambda apply --wait` waits on: every member with the serving role that says where it
 * answers (`GET /v1/status` of the node asked), each asked with the same token; the node asked
 * alone when it lists none (an older node, or one that lost ZooKeeper).
 */
export async function servingNodes(asked: ServingClient, askedUrl: string, token: string | undefined): Promise<ServingNode[]> {
  const status = await asked.status();
  const serving = (status.members ?? []).filter((m) => m.roles.includes('serving') && m.url);
  if (serving.length === 0) return [{ id: status.nodeId, client: asked }];
  return serving.map((m) => ({ id: m.id, client: m.url === askedUrl ? asked : new ServingClient({ url: m.url!, ...(token ? { token } : {}) }) }));
}

/**
 * Waits (blocking reads of `GET /v1/views?waitFor=`, on every node at once) until each of `nodes`
 * serves definitions `version` with every view exact, printing which views still backfill where,
 * and how far, whenever that changes; a node that cannot be reached is asked again every second.
 * Throws when `timeoutMs` ends first, naming what each node still lacks.
 */
export async function waitUntilServing(
  nodes: readonly ServingNode[],
  version: number,
  timeoutMs: number,
  print: (line: string) => void,
  now: () => number = Date.now,
  pause: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
): Promise<void> {
  const startedAt = now();
  const left = () => startedAt + timeoutMs - now();
  const prefix = (id: string) => (nodes.length > 1 ? `${id}: ` : '');
  /** What each node not serving yet lacks, as last heard. */
  const lacking = new Map<string, string>();
  let failed = false;
  await Promise.all(
    nodes.map(async ({ id, client }) => {
      let last = '';
      while (!failed) {
        let line: string;
        try {
          const { views, settled } = await client.waitForViews(version, Math.max(0, Math.min(WAIT_STEP_MS, left())));
          if (settled) {
            lacking.delete(id);
            if (nodes.length > 1) print(`${id}: serving definitions version ${version}`);
            return;
          }
          const backfilling = describeBackfills(views);
          line = backfilling ? `backfilling ${backfilling}` : `${nodes.length > 1 ? '' : 'the node '}does not run definitions version ${version} yet`;
        } catch (error) {
          if (!(error instanceof LambdaError && error.retriable)) {
            failed = true;
            throw error;
          }
          line = `unreachable (${error.message})`;
          if (left() > 0) await pause(Math.min(UNREACHABLE_RETRY_MS, left()));
        }
        lacking.set(id, line);
        if (left() <= 0) return;
        if (line !== last) print(`waiting: ${prefix(id)}${line}`);
        last = line;
      }
    }),
  );
  if (lacking.size > 0) {
    const still = nodes.filter((n) => lacking.has(n.id)).map((n) => `${prefix(n.id)}${lacking.get(n.id)}`);
    throw new LambdaError(`timed out after ${formatDurationMs(timeoutMs)} waiting for definitions version ${version} to serve: ${still.join('; ')}`);
  }
  const where = nodes.length > 1 ? ` on every serving node (${nodes.map((n) => n.id).join(', ')})` : '';
  print(`serving: definitions version ${version}${where}, every view exact (waited ${formatDurationMs(now() - startedAt)})`);
}

/** `a 42% (added), b 7% (changed)`: the views whose next definition is not exact yet. */
function describeBackfills(views: readonly ViewInfo[]): string {
  return views
    .filter((v) => v.backfill)
    .map((v) => `${v.name} ${Math.floor(v.backfill!.progress * 100)}% (${v.backfill!.kind})`)
    .join(', ');
}
