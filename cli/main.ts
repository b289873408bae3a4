import { Command, CommanderError } from 'commander';
import { LambdaError } from '../core/errors/index.ts';
import { registerCheckCommand } from './commands/check-command.ts';
import { registerStartCommand } from './commands/start-command.ts';
import { registerBatchCommand } from './commands/batch-command.ts';
import { registerDemoCommand } from './commands/demo-command.ts';
import { registerQueryCommand } from './commands/query-command.ts';
import { registerStatusCommand } from './commands/status-command.ts';

const program = new Command()
  .name('lambda')
  .description('Lambda-architecture analytics: exact batch + realtime views over Kafka, SQL and alerts')
  .showHelpAfterError()
  .exitOverride();

registerStartCommand(program);
registerCheckCommand(program);
registerQueryCommand(program);
registerStatusCommand(program);
registerBatchCommand(program);
registerDemoCommand(program);

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
