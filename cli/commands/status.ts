import { runningStack } from '../../app/stack-file.js';
import type { ConfigContext } from '../action.js';

interface StatusOptions {
  readonly json?: boolean;
}

async function registryAnswers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(3000) });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * `sluice status`: up means the `sluice up` process of this data directory is alive and its
 * services answer (Kafka metadata, the registry's /subjects). Without a running process, with
 * KAFKA_BROKERS set, it reports whether that cluster answers. Exit code 0 when up, 1 when not.
 */
export async function statusCommand({ config }: ConfigContext, options: StatusOptions): Promise<number> {
  const running = await runningStack(config.dataDir);
  const kafka = running?.endpoints.kafka ?? config.kafka.externalBrokers?.join(',');
  const schemaRegistry = running?.endpoints.schemaRegistry ?? config.schemaRegistry.externalUrl;
  const [kafkaUp, registryUp] = await Promise.all([
    kafka === undefined
      ? false
      : // The Kafka client alone, and only when there is a cluster to ask (the kafka/ barrel would
        // also load prom-client and the broker launcher).
        import('../../kafka/client.js')
          .then(({ describeCluster }) => describeCluster(kafka.split(','), 3000))
          .then(
            () => true,
            () => false,
          ),
    schemaRegistry === undefined ? true : registryAnswers(schemaRegistry),
  ]);
  const up = kafkaUp && registryUp && (running !== undefined || config.kafka.externalBrokers !== undefined);

  if (options.json) {
    const report = up
      ? {
          up,
          kafka,
          ...(schemaRegistry ? { schemaRegistry } : {}),
          ...(running
            ? {
                clickhouse: running.endpoints.clickhouse,
                ...(running.endpoints.dashboard ? { dashboard: running.endpoints.dashboard } : {}),
                metrics: running.endpoints.metrics,
                features: running.endpoints.features,
                predict: running.endpoints.predict,
                pid: running.pid,
                dataDir: running.dataDir,
              }
            : {}),
        }
      : { up };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else if (up) {
    const owner = running ? ` (pid ${running.pid}, data in ${running.dataDir})` : '';
    const lines = [`sluice is up${owner}`, `  kafka            ${kafka}`];
    if (schemaRegistry) lines.push(`  schema registry  ${schemaRegistry}`);
    if (running)
      lines.push(
        `  clickhouse       ${running.endpoints.clickhouse}`,
        ...(running.endpoints.dashboard ? [`  dashboard        ${running.endpoints.dashboard}`] : []),
        `  metrics          ${running.endpoints.metrics}`,
        `  features         ${running.endpoints.features}/<view>/<entity>   (online lookups; POST ${running.endpoints.features} for batches)`,
        `  predict          POST ${running.endpoints.predict}/<model>   (synchronous predictions)`,
      );
    process.stdout.write(`${lines.join('\n')}\n`);
  } else if (running) {
    const down = [kafkaUp ? undefined : `Kafka at ${kafka}`, registryUp ? undefined : `the schema registry at ${schemaRegistry}`].filter(
      Boolean,
    );
    process.stdout.write(`sluice is starting or unhealthy: pid ${running.pid} is alive but ${down.join(' and ')} does not answer\n`);
  } else {
    process.stdout.write(`sluice is not running on ${config.dataDir}\n`);
  }
  return up ? 0 : 1;
}
