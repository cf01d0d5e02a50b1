import path from 'node:path';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import type { MetricsRegistry } from '../common/metrics.js';
import { createKafka } from '../kafka/index.js';
import { CacheBudget } from '../state/index.js';
import { ModelWatcher } from '../models/deployment.js';
import { currentInputs, versionProblems } from '../models/guards.js';
import { ArtifactStore } from '../models/registry.js';
import type { SchemaIds } from '../schemas/index.js';
import type { HealthSource } from '../serving/ops-server.js';
import { inferenceMetrics } from '../streams/inference/metrics.js';
import { runPipeline, type RunningStage, type StageOptions } from '../streams/runtime/index.js';
import type { ModelDefinition, Topology } from '../topology/index.js';
import type { Tracer } from '../common/tracing.js';
import { defineStages, pipelineFor, stageNames } from './stages.js';

export interface LaunchOptions {
  readonly config: SluiceConfig;
  readonly topology: Topology;
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  readonly schemaIds: SchemaIds;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  /** Where model artifacts are (default `<dataDir>/models`). */
  readonly modelsDir?: string;
  /** Traces records and commits (OpenTelemetry); none: tracing off. */
  readonly tracer?: Tracer;
  /** Runtime settings beyond the config's (tests shorten group timeouts). */
  readonly stageOverrides?: Partial<StageOptions>;
}

/** A started pipeline and the models its inference stages follow. */
export interface Launched {
  readonly name: string;
  readonly stage: RunningStage;
  readonly watchers: ReadonlyMap<string, { readonly model: ModelDefinition; readonly watcher: ModelWatcher }>;
  /** Settles with the error if the pipeline fails. */
  readonly failed: Promise<Error>;
  /** Liveness and readiness, for /health and /ready. */
  readonly health: HealthSource;
  stop(): Promise<void>;
}

export class UnknownStageError extends Error {
  override readonly name = 'UnknownStageError';
}

/**
 * Starts what a name runs (`pipeline`: the fused ingest → features → inference of every source;
 * or one stage alone): follows the champion of each model it scores, defines the stages, and runs
 * them with the guarantees and bounds of the config.
 */
export async function launch(name: string, options: LaunchOptions): Promise<Launched> {
  const { config, topology, logger } = options;
  const names = stageNames(topology);
  if (!names.includes(name)) throw new UnknownStageError(`unknown stage "${name}"; stages: ${names.join(', ')}`);
  const scores = name === 'pipeline' ? topology.models : topology.models.filter((model) => name === `inference-${model.name}`);
  const watchers = new Map<string, { readonly model: ModelDefinition; readonly watcher: ModelWatcher }>();
  const kafka = createKafka({ brokers: options.brokers, clientId: 'sluice-models', logger });
  const artifacts = new ArtifactStore(options.modelsDir ?? path.join(config.dataDir, 'models'));
  try {
    for (const model of scores) {
      const watcher = new ModelWatcher({
        kafka,
        topic: `${config.topicPrefix}registry.models`,
        deploymentsTopic: `${config.topicPrefix}registry.deployments`,
        // Candidates are warmed here and reported ready: a blue-green switch waits for every instance.
        readiness: {
          topic: `${config.topicPrefix}registry.readiness`,
          schemaId: options.schemaIds.get(`${config.topicPrefix}registry.readiness-value`) ?? 0,
        },
        groupPrefix: config.topicPrefix,
        // A version whose recorded inputs today's events and views cannot give is refused before it serves.
        guard: (version, metadata) => versionProblems(version, metadata, currentInputs(model, topology.views)),
        registryUrl: options.registryUrl,
        model: model.name,
        artifacts,
        logger,
        maxWaitMs: 0,
        maxBatch: 1_024,
        onBatch: (size) => inferenceMetrics(options.metrics).batchSize.observe({ model: model.name }, size),
      });
      await watcher.start();
      watchers.set(model.name, { model, watcher });
    }
    const stages = await defineStages({
      topology,
      topicPrefix: config.topicPrefix,
      brokers: options.brokers,
      registryUrl: options.registryUrl,
      schemaIds: options.schemaIds,
      metrics: options.metrics,
      logger,
      watchers: new Map([...watchers].map(([model, { watcher }]) => [model, watcher])),
    });
    const spec = pipelineFor(name, topology, stages, config.topicPrefix);
    if (!spec) throw new UnknownStageError(`unknown stage "${name}"; stages: ${names.join(', ')}`);
    const stage = await runPipeline(spec, {
      ...stageOptionsFor(name, options),
      ...(options.tracer ? { tracer: options.tracer } : {}),
      ...options.stageOverrides,
    });
    const failed = stage.done.then(
      () => new Promise<Error>(() => undefined),
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    return {
      name,
      stage,
      watchers,
      failed,
      health: {
        live: () => !stage.status().failed,
        ready: () => stage.status().ready,
        detail: () => ({ stages: [stage.status()] }),
      },
      async stop() {
        await stage.stop();
        for (const { watcher } of watchers.values()) await watcher.stop();
      },
    };
  } catch (error) {
    for (const { watcher } of watchers.values()) await watcher.stop();
    throw error;
  }
}

const stateCaches = new WeakMap<MetricsRegistry, CacheBudget>();

/** The process's state cache budget, shared by its stages (a process has one metrics registry). */
function stateCacheOf(metrics: MetricsRegistry, maxBytes: number): CacheBudget {
  let budget = stateCaches.get(metrics);
  if (!budget) {
    budget = new CacheBudget(maxBytes);
    stateCaches.set(metrics, budget);
  }
  return budget;
}

/** How a pipeline of this deployment runs: its group, guarantees, bounds and state folder. */
export function stageOptionsFor(name: string, options: Pick<LaunchOptions, 'config' | 'brokers' | 'metrics' | 'logger'>): StageOptions {
  const { config } = options;
  return {
    brokers: options.brokers,
    groupId: `${config.topicPrefix}sluice-${name}`,
    dlqTopic: `${config.topicPrefix}dlq`,
    guarantee: config.stages.guarantee,
    maxInFlight: config.stages.maxInFlight,
    commitIntervalMs: config.stages.commitIntervalMs,
    stateCache: stateCacheOf(options.metrics, config.stages.stateCacheMaxBytes),
    fetchMinBytes: config.stages.fetchMinBytes,
    fetchMaxWaitMs: config.stages.fetchMaxWaitMs,
    transactionalIdPrefix: `${config.topicPrefix}sluice-`,
    stateDir: path.join(config.dataDir, 'state'),
    topicPrefix: config.topicPrefix,
    metrics: options.metrics,
    logger: options.logger,
  };
}
