import { assertConfigBindable } from '../../common/auth.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { serveOps } from '../../serving/ops-server.js';
import { registerSchemas } from '../../schemas/index.js';
import { OnlineStore, onlineRoutes } from '../../serving/online.js';
import { predictRoutes } from '../../serving/predict-route.js';
import { tracedRoute } from '../../serving/traced-route.js';
import { scrapeAddress, writeScrapeTarget } from '../../serving/scrape-target.js';
import { tracingFromConfig } from '../../common/tracing-sdk.js';
import { launch } from '../../app/launch.js';
import { topologySubjects } from '../../app/stages.js';
import { commandTopology } from '../topology.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';
import { runRegistryCommand } from './registry.js';
import { launchMonitoring, type MonitoringLaunchOptions } from '../../app/monitoring.js';
import type { MonitoringPart } from '../../streams/monitoring/index.js';

/** `sluice run monitoring` runs every monitoring stage; `monitoring-<part>` one of them. */
const MONITORING: Readonly<Record<string, readonly MonitoringPart[]>> = {
  monitoring: ['drift', 'performance', 'alerts', 'webhook', 'actions'],
  'monitoring-drift': ['drift'],
  'monitoring-performance': ['performance'],
  'monitoring-alerts': ['alerts', 'webhook', 'actions'],
};

/**
 * `sluice run <stage>`: the fused pipeline (`pipeline`) or one stage alone, in the foreground,
 * against the configured cluster (KAFKA_BROKERS and SCHEMA_REGISTRY_URL, else the `sluice up` of
 * this data directory). Several processes of one name share the work as one consumer group.
 * Ctrl-C finishes in-flight records and commits.
 */
export async function runCommand(context: CommandContext, name: string): Promise<number> {
  if (name === 'registry') return runRegistryCommand(context);
  const { config, logger } = context;
  assertConfigBindable(config, ['ops']);
  const topology = await commandTopology(config);
  const { brokers, registryUrl } = await findCluster(config);
  const schemaIds = await registerSchemas(registryUrl, topologySubjects(config.topicPrefix, topology), logger);
  const metrics = createMetricsRegistry();
  const monitoringParts = MONITORING[name];
  if (monitoringParts)
    return runMonitoring({ config, logger }, name, { topology, brokers, registryUrl, schemaIds, metrics, parts: monitoringParts });
  const tracing = tracingFromConfig(config, `sluice-${name}`);
  const launched = await launch(name, {
    config,
    topology,
    brokers,
    registryUrl,
    schemaIds,
    metrics,
    logger,
    ...(tracing ? { tracer: tracing.tracer } : {}),
  });
  const online =
    name === 'pipeline' || name === 'features' ? new OnlineStore(launched.stage, topology.views, config.topicPrefix) : undefined;
  const ops = await serveOps(
    metrics,
    launched.health,
    config.metrics.host,
    config.metrics.port,
    [
      onlineRoutes(() => online),
      tracing
        ? tracedRoute(
            tracing.tracer,
            '/predict/',
            predictRoutes(launched.watchers, () => online, metrics),
          )
        : predictRoutes(launched.watchers, () => online, metrics),
    ],
    { tokens: config.auth.ops },
  );
  const scrapeTarget = await writeScrapeTarget(config.dataDir, name, scrapeAddress(ops.url, config.metrics.advertisedHost));
  process.stdout.write(`stage ${name} running (${config.stages.guarantee}) against ${brokers.join(',')}; metrics at ${ops.url}/metrics\n`);

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
  });
  const outcome = await Promise.race([signalled.then((signal) => ({ signal })), launched.failed.then((error) => ({ error }))]);
  await launched.stop();
  await scrapeTarget.remove();
  await ops.close();
  await tracing?.shutdown();
  if ('error' in outcome) {
    process.stderr.write(`sluice: stage ${name} failed: ${outcome.error.message}\n`);
    return 1;
  }
  process.stdout.write(`stage ${name} stopped\n`);
  return 0;
}

async function runMonitoring(
  { config, logger }: CommandContext,
  name: string,
  options: Omit<MonitoringLaunchOptions, 'config' | 'logger'>,
): Promise<number> {
  const monitoring = await launchMonitoring({ config, logger, ...options });
  const ops = await serveOps(
    options.metrics,
    {
      live: () => true,
      ready: () => [...monitoring.stages.values()].every((stage) => stage.status().ready),
      detail: () => ({ stages: [...monitoring.stages.values()].map((stage) => stage.status()) }),
    },
    config.metrics.host,
    config.metrics.port,
    [],
    { tokens: config.auth.ops },
  );
  process.stdout.write(
    `stage ${name} running (${[...monitoring.stages.keys()].join(', ') || 'nothing to monitor'}) against ${options.brokers.join(',')}; metrics at ${ops.url}/metrics\n`,
  );
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => resolve(signal));
  });
  const outcome = await Promise.race([signalled.then((signal) => ({ signal })), monitoring.failed.then((error) => ({ error }))]);
  await monitoring.stop();
  await ops.close();
  if ('error' in outcome) {
    process.stderr.write(`sluice: ${outcome.error.message}\n`);
    return 1;
  }
  process.stdout.write(`stage ${name} stopped\n`);
  return 0;
}
