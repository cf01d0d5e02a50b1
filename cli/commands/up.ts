import { startStack } from '../../infra/index.js';
import { STAGE_NAMES } from '../../topology/stages.js';
import type { CommandContext } from '../action.js';

/**
 * `sluice up`: starts the stack, prints where each service listens, and stays in the foreground
 * until SIGINT/SIGTERM/SIGHUP (then stops everything) or until a service dies (then exits 1).
 */
export async function upCommand({ config, logger }: CommandContext): Promise<number> {
  const stack = await startStack(config, logger);
  const { endpoints, kafkaMode } = stack.state;
  const where = kafkaMode === 'local' ? `local KRaft broker, data in ${config.dataDir}` : 'external cluster (KAFKA_BROKERS)';
  process.stdout.write(
    [
      'sluice is up',
      `  kafka            ${endpoints.kafka}   (${where})`,
      `  schema registry  ${endpoints.schemaRegistry}   (Confluent REST API${config.schemaRegistry.externalUrl ? ', SCHEMA_REGISTRY_URL' : ''})`,
      `  metrics          ${endpoints.metrics}   (Prometheus; /health and /ready beside it)`,
      config.clickhouse.url
        ? `  clickhouse       ${endpoints.clickhouse}   (CLICKHOUSE_URL: the offline store)`
        : `  clickhouse       ${endpoints.clickhouse}   (embedded ClickHouse, HTTP interface${config.sql.writable ? '' : ', read-only'})`,
      `  features         ${endpoints.features}/<view>/<entity>   (online lookups; POST ${endpoints.features} for batches)`,
      `  stages           ${STAGE_NAMES.join(', ')} (${config.stages.guarantee}), sink → ClickHouse`,
      'Press Ctrl-C to stop. `sluice status --json` prints these endpoints.',
      '',
    ].join('\n'),
  );

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
  });
  const outcome = await Promise.race([
    signalled.then((signal) => ({ signal })),
    stack.failed.then((error) => ({ error })),
  ]);
  if ('error' in outcome) {
    logger.error({ err: outcome.error }, 'a service of the stack stopped');
    process.stderr.write(`sluice: ${outcome.error.message}\n`);
    await stack.stop();
    return 1;
  }
  process.stdout.write(`received ${outcome.signal}, stopping…\n`);
  // A second Ctrl-C while stopping forces the exit; the broker then dies with us (ParentWatch).
  process.once('SIGINT', () => process.exit(130));
  await stack.stop();
  process.stdout.write('stopped\n');
  return 0;
}
