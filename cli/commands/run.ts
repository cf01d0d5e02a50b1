import { assertConfigBindable } from '../../common/auth.js';
import { ConfigError } from '../../common/errors.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { serveOps } from '../../serving/ops-server.js';
import { registerSchemas } from '../../schemas/index.js';
import { OnlineStore, onlineRoutes } from '../../serving/online.js';
import { launchStages } from '../../app/launch.js';
import { STAGE_NAMES, topologySubjects } from '../../app/stages.js';
import { commandTopology } from '../topology.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';
import { runRegistryCommand } from './registry.js';

/**
 * `sluice run <stage>`: one stage in the foreground against the configured cluster (KAFKA_BROKERS
 * and SCHEMA_REGISTRY_URL, else the `sluice up` of this data directory), so that stages scale
 * out as separate processes in one consumer group. Ctrl-C finishes in-flight records and commits.
 */
export async function runCommand(context: CommandContext, name: string): Promise<number> {
  if (name === 'registry') return runRegistryCommand(context);
  const { config, logger } = context;
  if (!STAGE_NAMES.includes(name)) throw new ConfigError(`unknown stage "${name}"; stages: ${STAGE_NAMES.join(', ')}, or registry`);
  assertConfigBindable(config, ['ops']);
  const topology = await commandTopology(config);
  const { brokers, registryUrl } = await findCluster(config);
  const schemaIds = await registerSchemas(registryUrl, topologySubjects(config.topicPrefix, topology), logger);
  const metrics = createMetricsRegistry();
  const stages = await launchStages([name], { config, topology, brokers, registryUrl, schemaIds, metrics, logger });
  const features = stages.stages.get('features');
  const online = features ? new OnlineStore(features, topology.views, config.topicPrefix) : undefined;
  const ops = await serveOps(metrics, stages.health, config.metrics.host, config.metrics.port, [onlineRoutes(() => online)], {
    tokens: config.auth.ops,
  });
  process.stdout.write(`stage ${name} running (${config.stages.guarantee}) against ${brokers.join(',')}; metrics at ${ops.url}/metrics\n`);

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
  });
  const outcome = await Promise.race([signalled.then((signal) => ({ signal })), stages.failed.then((error) => ({ error }))]);
  await stages.stop();
  await ops.close();
  if ('error' in outcome) {
    process.stderr.write(`sluice: stage ${name} failed: ${outcome.error.message}\n`);
    return 1;
  }
  process.stdout.write(`stage ${name} stopped\n`);
  return 0;
}
