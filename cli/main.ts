import { Command } from 'commander';
import { upCommand } from './commands/up.js';
import { statusCommand } from './commands/status.js';
import { runAction } from './action.js';
import { runCommand } from './commands/run.js';
import { sqlCommand } from './commands/sql.js';
import { STAGE_NAMES } from '../topology/stages.js';

const program = new Command()
  .name('sluice')
  .description('Streaming-first, event-sourced ML infrastructure over Apache Kafka')
  .version('0.1.0')
  .showHelpAfterError();

program
  .command('up')
  .description('start the local stack (Kafka broker, platform topics) in the foreground; Ctrl-C stops it')
  .action(runAction(upCommand));

program
  .command('run')
  .description(`run one stage in the foreground against the configured cluster (stages: ${STAGE_NAMES.join(', ')})`)
  .argument('<stage>', 'the stage to run')
  .action(runAction(runCommand));

program
  .command('sql')
  .description("run a query on the stack's ClickHouse and print the result as a table")
  .argument('<query>', 'the SQL to run (read-only unless SLUICE_SQL_WRITABLE=true)')
  .option('--format <format>', 'a ClickHouse output format instead of PrettyCompact (JSONEachRow, CSV, ...)')
  .action(runAction(sqlCommand));

program
  .command('status')
  .description('report whether the stack on this data directory is up, and where its services listen')
  .option('--json', 'print one JSON object of the running endpoints')
  .action(runAction(statusCommand));

await program.parseAsync(process.argv);
