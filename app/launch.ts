import path from 'node:path';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import type { HealthSource } from '../serving/ops-server.js';
import type { MetricsRegistry } from '../common/metrics.js';
import type { SchemaIds } from '../schemas/index.js';
import { STAGES } from './stages.js';
import type { Topology } from '../topology/index.js';
import { runStage, type RunningStage, type StageOptions } from '../streams/runtime/index.js';

export interface LaunchOptions {
  readonly config: SluiceConfig;
  readonly topology: Topology;
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  readonly schemaIds: SchemaIds;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
}

/** Starts one stage of the topology by name, with the guarantees and bounds of the config. */
export async function launchStage(name: string, options: LaunchOptions): Promise<RunningStage> {
  const define = STAGES[name];
  if (!define) throw new Error(`unknown stage "${name}"; stages: ${Object.keys(STAGES).join(', ')}`);
  const definition = await define({
    topology: options.topology,
    topicPrefix: options.config.topicPrefix,
    brokers: options.brokers,
    registryUrl: options.registryUrl,
    schemaIds: options.schemaIds,
    metrics: options.metrics,
    logger: options.logger,
  });
  return runStage(definition, stageOptionsFor(name, options));
}

/** How every stage of this deployment runs: its group, guarantees, bounds and state folder. */
export function stageOptionsFor(name: string, options: LaunchOptions): StageOptions {
  const { config } = options;
  return {
    brokers: options.brokers,
    groupId: `${config.topicPrefix}sluice-${name}`,
    dlqTopic: `${config.topicPrefix}dlq`,
    guarantee: config.stages.guarantee,
    maxInFlight: config.stages.maxInFlight,
    commitIntervalMs: config.stages.commitIntervalMs,
    transactionalIdPrefix: `${config.topicPrefix}sluice-`,
    stateDir: path.join(config.dataDir, 'state'),
    topicPrefix: config.topicPrefix,
    metrics: options.metrics,
    logger: options.logger,
  };
}

export interface RunningStages {
  readonly stages: ReadonlyMap<string, RunningStage>;
  /** Settles with the error of the first stage that fails. */
  readonly failed: Promise<Error>;
  /** Liveness and readiness over every stage, for /health and /ready. */
  readonly health: HealthSource;
  stop(): Promise<void>;
}

/** Starts several stages in this process (as `sluice up` does); stops those started if one fails to start. */
export async function launchStages(names: readonly string[], options: LaunchOptions): Promise<RunningStages> {
  const stages = new Map<string, RunningStage>();
  try {
    for (const name of names) stages.set(name, await launchStage(name, options));
  } catch (error) {
    await Promise.all([...stages.values()].map((stage) => stage.stop()));
    throw error;
  }
  const failed = Promise.race(
    [...stages.values()].map((stage) =>
      stage.done.then(
        () => new Promise<Error>(() => undefined),
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      ),
    ),
  );
  return {
    stages,
    failed,
    health: {
      live: () => [...stages.values()].every((stage) => !stage.status().failed),
      ready: () => [...stages.values()].every((stage) => stage.status().ready),
      detail: () => ({ stages: [...stages.values()].map((stage) => stage.status()) }),
    },
    stop: async () => {
      await Promise.all([...stages.values()].map((stage) => stage.stop()));
    },
  };
}
