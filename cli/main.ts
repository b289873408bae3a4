import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { LambdaError } from '../core/errors/index.ts';
import { LOG_FORMATS, defaultLogFormat } from '../core/observability/logger.ts';
import { registerCheckCommand } from './commands/check-command.ts';
import { registerStartCommand } from './commands/start-command.ts';
import { registerBatchCommand } from './commands/batch-command.ts';
import { registerDemoCommand } from './commands/demo-command.ts';
import { registerQueryCommand } from './commands/query-command.ts';
import { registerStatusCommand } from './commands/status-command.ts';
import { registerApplyCommand } from './commands/apply-command.ts';
import { registerGetCommand } from './commands/get-command.ts';

const program = new Command()
  .name('lambda')
  .description('Lambda-architecture analytics: exact batch + realtime views over Kafka, SQL and alerts')
  .version(packageVersion(), '-V, --version', "print lambda's version")
  .addOption(
    new Option('--log-format <format>', 'log lines on stderr: pretty when stderr is a terminal, else JSON').choices(LOG_FORMATS).env('LAMBDA_LOG_FORMAT'),
  )
  .showHelpAfterError()
  .exitOverride()
  // Loggers are created inside the commands and worker threads; they read the format from the
  // environment, which workers inherit.
  .hook('preAction', (command) => {
    process.env.LAMBDA_LOG_FORMAT = (command.opts() as { logFormat?: string }).logFormat ?? defaultLogFormat();
  });

/** The version in package.json, found from here in a checkout (cli/) and in a build (dist/cli/). */
function packageVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'lambda-analytics' && pkg.version) return pkg.version;
    } catch {
      // not there: try the next
    }
  }
  return 'unknown';
}

registerStartCommand(program);
registerCheckCommand(program);
registerQueryCommand(program);
registerStatusCommand(program);
registerBatchCommand(program);
registerDemoCommand(program);
registerApplyCommand(program);
registerGetCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode;
  } else if (error instanceof LambdaError) {
    process.stderr.write(`lambda: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`lambda: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 70;
  }
}
