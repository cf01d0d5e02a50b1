import path from 'node:path';
import { assertConfigBindable } from '../../common/auth.js';
import { ConfigError } from '../../common/errors.js';
import { ensureWritableDir, readJsonFile, writeJsonFile } from '../../common/files.js';
import { choosePort } from '../../common/ports.js';
import { checkJava, ensureKafkaDistribution, startLocalBroker, type LocalBroker } from '../../kafka/index.js';
import { startSchemaRegistry } from '../../schemas/index.js';
import { isAlive, readStackState } from '../../app/stack.js';
import type { CommandContext } from '../action.js';

/**
 * `sluice run registry`: sluice's schema registry alone, without the stack — on the data
 * directory's local broker (started here) or KAFKA_BROKERS — so an operator can inspect and
 * repair subjects when `sluice up` cannot start (an incompatible schema registered, say). It
 * listens where the stack's registry does (the same saved port). Ctrl-C stops it.
 */
export async function runRegistryCommand({ config, logger }: CommandContext): Promise<number> {
  const stack = await readStackState(config.dataDir);
  if (stack && isAlive(stack.pid))
    throw new ConfigError(
      `sluice up is running on ${config.dataDir} (pid ${stack.pid}) and serves the registry at ${stack.endpoints.schemaRegistry}; use it, or stop the stack first (one registry writes a storage topic)`,
    );
  if (config.schemaRegistry.externalUrl)
    throw new ConfigError(
      `SCHEMA_REGISTRY_URL names another registry (${config.schemaRegistry.externalUrl}); sluice run registry serves sluice's own`,
    );
  assertConfigBindable(config, ['registry']);
  const dataDir = await ensureWritableDir(config.dataDir);

  let broker: LocalBroker | undefined;
  let brokers: readonly string[];
  if (config.kafka.externalBrokers) {
    brokers = config.kafka.externalBrokers;
  } else {
    await checkJava(config.kafka.javaHome);
    const distribution = await ensureKafkaDistribution({
      cacheDir: config.cacheDir,
      version: config.kafka.version,
      javaHome: config.kafka.javaHome,
      logger,
    });
    broker = await startLocalBroker({
      dir: await ensureWritableDir(path.join(dataDir, 'kafka')),
      distribution,
      javaHome: config.kafka.javaHome,
      port: config.kafka.port,
      controllerPort: config.kafka.controllerPort,
      heap: config.kafka.heap,
      startTimeoutMs: config.kafka.startTimeoutMs,
      stopTimeoutMs: config.kafka.stopTimeoutMs,
      logger: logger.child({ service: 'kafka' }),
    });
    brokers = broker.brokers;
  }
  try {
    const savedFile = path.join(dataDir, 'schema-registry.json');
    const saved = await readJsonFile<{ port: number }>(savedFile);
    const port = await choosePort(config.schemaRegistry.port, saved?.port, 'SLUICE_SCHEMA_REGISTRY_PORT');
    const registry = await startSchemaRegistry({
      brokers,
      topic: `${config.topicPrefix}_schemas`,
      host: config.schemaRegistry.host,
      port,
      tokens: config.auth.registry,
      logger,
    });
    await writeJsonFile(savedFile, { port: Number(new URL(registry.url).port) });
    process.stdout.write(
      `schema registry running at ${registry.url} (storage ${config.topicPrefix}_schemas on ${brokers.join(',')}${broker ? ', local broker' : ''})\n` +
        `  subjects:        curl -s ${registry.url}/subjects\n` +
        `  delete a version: curl -X DELETE '${registry.url}/subjects/<subject>/versions/<version>' (then again with ?permanent=true)\n` +
        'Ctrl-C stops it\n',
    );
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(name, () => resolve(name));
    });
    logger.debug({ signal }, 'stopping the registry');
    await registry.stop();
    process.stdout.write('schema registry stopped\n');
    return 0;
  } finally {
    await broker?.stop();
  }
}
