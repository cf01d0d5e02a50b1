import { describeCluster, isAlive, readStackState, type StackState } from '../../infra/index.js';
import type { CommandContext } from '../action.js';

interface StatusOptions {
  readonly json?: boolean;
}

/**
 * `sluice status`: up means the `sluice up` process of this data directory is alive and its Kafka
 * answers (or, with KAFKA_BROKERS, that cluster answers). Exit code 0 when up, 1 when not.
 */
export async function statusCommand({ config }: CommandContext, options: StatusOptions): Promise<number> {
  const saved = await readStackState(config.dataDir);
  const running: StackState | undefined = saved && isAlive(saved.pid) ? saved : undefined;
  const kafka = config.kafka.externalBrokers?.join(',') ?? running?.endpoints.kafka;
  const kafkaAnswers = kafka !== undefined && (await describeCluster(kafka.split(','), 3000).then(() => true, () => false));
  const up = kafkaAnswers && (running !== undefined || config.kafka.externalBrokers !== undefined);

  if (options.json) {
    const report = up ? { up, kafka, ...(running ? { pid: running.pid, dataDir: running.dataDir } : {}) } : { up };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else if (up) {
    const owner = running ? ` (pid ${running.pid}, data in ${running.dataDir})` : '';
    process.stdout.write(`sluice is up${owner}\n  kafka   ${kafka}\n`);
  } else if (running) {
    process.stdout.write(`sluice is starting or unhealthy: pid ${running.pid} is alive but Kafka at ${running.endpoints.kafka} does not answer\n`);
  } else {
    process.stdout.write(`sluice is not running on ${config.dataDir}\n`);
  }
  return up ? 0 : 1;
}
