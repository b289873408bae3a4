import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { loadConfigFile } from '../../core/config/load-config.ts';
import { LambdaError } from '../../core/errors/index.ts';
import { createLogger } from '../../core/observability/logger.ts';
import { StorageLayout } from '../../core/storage/storage-layout.ts';
import { createCoordination } from '../node/coordination.ts';
import { durationMs } from './option-parsers.ts';

/**
 * `lambda batch run --config FILE`: asks the batch master to recompute now (through ZooKeeper in a
 * cluster, through storage.dir single-node) and waits for the run that served the request.
 */
export function registerBatchCommand(program: Command): void {
  const batch = program.command('batch').description('batch-layer operations');
  batch
    .command('run')
    .description('ask the batch master to recompute every view now, and wait for the outcome')
    .option('-c, --config <file>', 'the cluster\'s YAML config (default: $LAMBDA_CONFIG)')
    .addOption(new Option('--timeout <duration>', 'how long to wait for the run').argParser(durationMs).default(600_000, '10m'))
    .action(async (options: { config?: string; timeout: number }) => {
      const file = options.config ?? process.env.LAMBDA_CONFIG;
      if (!file) throw new LambdaError('lambda batch run needs the cluster config: --config FILE or LAMBDA_CONFIG');
      const loaded = await loadConfigFile(file);
      const logger = createLogger('lambda', { level: 'warn' });
      const layout = new StorageLayout(resolve(loaded.config.storage.dir));
      const coordination = await createCoordination(loaded, layout, `cli-${process.pid}`, logger);
      try {
        const outcome = await coordination.runRequests.request({ timeoutMs: options.timeout, requestedBy: `lambda batch run (pid ${process.pid})` });
        if (!outcome.ok) throw new LambdaError(`the batch run failed: ${outcome.error ?? 'unknown error'}; the previous version keeps serving`);
        process.stdout.write(`batch version ${outcome.version} published (${outcome.startedAt} → ${outcome.finishedAt})\n`);
      } finally {
        await coordination.close();
      }
    });
}
