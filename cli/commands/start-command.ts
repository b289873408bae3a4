import { readFileSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfigFile, parseConfig, type LoadedConfig } from '../../core/config/load-config.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { bindViews } from '../../core/views/bind-views.ts';
import type { Role } from '../../core/node/role.ts';
import { startDemoGenerator } from '../demo/demo-generator.ts';
import { ALL_ROLES, LambdaNode } from '../node/lambda-node.ts';
import { shutdownSignal, stopWithinDeadline } from './shutdown.ts';
import { positiveNumber } from './option-parsers.ts';

export const DEMO_CONFIG = new URL('../demo/demo-config.yaml', import.meta.url);

function parseRoles(value: string): Role[] {
  const roles = value.split(',').map((r) => r.trim()).filter(Boolean);
  const unknown = roles.filter((r) => !(ALL_ROLES as readonly string[]).includes(r));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown role ${unknown.join(', ')}; roles are ${ALL_ROLES.join(', ')}`);
  return roles as Role[];
}

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new InvalidArgumentError(`"${value}" is not a TCP port`);
  return port;
}

/** Loads and fully validates (including DuckDB binding) the config, or the bundled demo one. */
async function loadForStart(file: string | undefined): Promise<{ loaded: LoadedConfig; demo: boolean }> {
  const loaded = file ? await loadConfigFile(file) : parseConfig(readFileSync(DEMO_CONFIG, 'utf8'), { file: 'demo-config.yaml (bundled)' });
  const instance = await DuckDBInstance.create(':memory:');
  try {
    await bindViews(loaded, await instance.connect());
  } finally {
    instance.closeSync();
  }
  return { loaded, demo: file === undefined };
}

/**
 * `lambda start`: runs the given roles in this process. With no config (and no LAMBDA_CONFIG)
 * it runs the bundled demo: single-node, with a clickstream generator feeding it.
 */
export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('run a node: all roles by default; with no config, the single-node demo')
    .option('-c, --config <file>', 'the YAML config file (default: $LAMBDA_CONFIG, else the bundled demo)')
    .option('-r, --roles <roles>', `comma-separated roles: ${ALL_ROLES.join(', ')}`, parseRoles, [...ALL_ROLES])
    .option('-p, --port <port>', 'HTTP port (default: $PORT, else serving.port)', parsePort)
    .option('--node-id <id>', 'this node\'s stable id (default: node.id, else $LAMBDA_NODE_ID, else the host name)')
    .option('--no-demo-events', 'in demo mode, do not generate events')
    .option('--demo-rate <eventsPerSecond>', 'demo events per second', positiveNumber, 200)
    .action(async (options: { config?: string; roles: Role[]; port?: number; nodeId?: string; demoEvents: boolean; demoRate: number }) => {
      const logger = createLogger('lambda');
      const { loaded, demo } = await loadForStart(options.config ?? process.env.LAMBDA_CONFIG);
      const port = options.port ?? parsePort(process.env.PORT);
      const node = await LambdaNode.start({ loaded, roles: options.roles, logger, ...(port === undefined ? {} : { port }), ...(options.nodeId ? { nodeId: options.nodeId } : {}) });
      const generator = demo && options.demoEvents && node.localLog ? startDemoGenerator(node.localLog, { eventsPerSecond: options.demoRate, logger }) : undefined;
      if (node.url) process.stdout.write(`lambda ${demo ? 'demo ' : ''}running at ${node.url}\n`);
      await shutdownSignal({ logger });
      // Exits: 0 when stopped, 1 past node.shutdownTimeout (or when stopping fails), at once on a second signal.
      await stopWithinDeadline(
        async () => {
          generator?.stop();
          await node.stop();
        },
        { logger, deadlineMs: loaded.config.node.shutdownTimeout, halt: () => node.halt(), stoppingStep: () => node.stoppingStep },
      );
    });
}
