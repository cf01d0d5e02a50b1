import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import type { MetricsRegistry } from '../../common/metrics.js';
import { createKafka, ensureTopics, retryKafka, type TopicSpec } from '../../kafka/index.js';
import { ArtifactStore } from '../../models/registry.js';
import { AvroSerde, type SchemaIds } from '../../schemas/index.js';
import type { Topology } from '../../topology/topology.js';
import { runPipeline, runStage, type RunningStage, type StageOptions } from '../runtime/index.js';
import { actionsStage, type RetrainExecutor } from './actions.js';
import { alertsStage, ALERTS_STAGE } from './alerts.js';
import { ModelCatalog, type ModelCatalogApi } from './catalog.js';
import { DRIFT_STAGE, driftPipeline } from './drift.js';
import { startLagSampler, type RunningLagSampler } from './lag.js';
import { PERFORMANCE_STAGE, performancePipeline } from './performance.js';
import { ACTIONS_STAGE } from './actions.js';
import { WEBHOOK_STAGE, webhookStage } from './webhook.js';

/**
 * Starts the monitoring stages of a topology, each in its own consumer group (so monitoring never
 * slows or stops the pipeline that serves predictions, and each can be replayed, scaled and
 * restarted alone): drift and performance (when there are models), alerts (when there are rules),
 * and the alert webhook, actions and lag sampler when configured.
 */
export type MonitoringPart = 'drift' | 'performance' | 'alerts' | 'webhook' | 'actions' | 'lag';

export interface MonitoringRunOptions {
  readonly topology: Topology;
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  readonly schemaIds: SchemaIds;
  readonly topicPrefix: string;
  /** Where model artifacts (model.json with the drift reference) are. */
  readonly artifactsDir: string;
  /** How a monitoring stage of this name runs: its group id, guarantees, state folder. */
  readonly stageOptions: (name: string) => StageOptions;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  /** The parts to run (default: all that apply). */
  readonly parts?: readonly MonitoringPart[];
  readonly webhookUrl?: string;
  readonly retrain?: RetrainExecutor;
  /** Groups whose lag consumer-lag rules watch. */
  readonly lagGroups?: readonly { readonly group: string; readonly topics: readonly string[] }[];
  readonly lagIntervalMs?: number;
  /** Model versions and references (default: registry.models and the artifacts folder). */
  readonly catalog?: ModelCatalogApi;
}

export interface RunningMonitoring {
  readonly stages: ReadonlyMap<string, RunningStage>;
  /** Settles with the error when a stage fails. */
  readonly failed: Promise<Error>;
  stop(): Promise<void>;
}

/** The internal topics of the monitoring stages, named after their groups. */
export function monitoringTopics(groupOf: (name: string) => string): {
  drift: { partials: string };
  performance: { outcomes: string; partials: string };
} {
  return {
    drift: { partials: `${groupOf(DRIFT_STAGE)}-partials` },
    performance: { outcomes: `${groupOf(PERFORMANCE_STAGE)}-outcomes`, partials: `${groupOf(PERFORMANCE_STAGE)}-partials` },
  };
}

export async function startMonitoring(options: MonitoringRunOptions): Promise<RunningMonitoring> {
  const { topology, topicPrefix, schemaIds, logger } = options;
  const parts = new Set<MonitoringPart>(options.parts ?? ['drift', 'performance', 'alerts', 'webhook', 'actions', 'lag']);
  const kafka = createKafka({ brokers: options.brokers, clientId: 'sluice-monitoring', logger });
  const serdeFor = (reader?: ConstructorParameters<typeof AvroSerde>[1]): AvroSerde => new AvroSerde(options.registryUrl, reader);
  const schemaId = (topic: string): number => schemaIds.get(`${topicPrefix}${topic}-value`) ?? 0;
  const catalog =
    options.catalog ??
    new ModelCatalog({
      kafka,
      topic: `${topicPrefix}registry.models`,
      registryUrl: options.registryUrl,
      artifacts: new ArtifactStore(options.artifactsDir),
      logger,
      sketchK: topology.monitoring.sketchK,
    });
  const internal = monitoringTopics((name) => options.stageOptions(name).groupId);
  const models = topology.models;
  const stages = new Map<string, RunningStage>();
  let lag: RunningLagSampler | undefined;

  // ---- topics: partition counts of the inputs, the internal topics ----------------------------
  const admin = kafka.admin();
  await retryKafka(() => admin.connect());
  const partitions = new Map<string, number>();
  try {
    const inputs = [
      ...models.map((model) => `${topicPrefix}predictions.${model.name}`),
      ...models.map((model) => `${topicPrefix}events.${model.label.source.name}`),
    ];
    for (const topic of new Set(inputs)) {
      const metadata = await retryKafka(() => admin.fetchTopicMetadata({ topics: [topic] }));
      partitions.set(topic, metadata.topics[0]?.partitions.length ?? 1);
    }
    const outcomePartitions = Math.max(1, ...models.map((model) => partitions.get(`${topicPrefix}predictions.${model.name}`) ?? 1));
    const big = { 'max.message.bytes': String(16 * 1024 * 1024), 'retention.ms': String(7 * 86_400_000) };
    const specs: TopicSpec[] = [];
    if (models.length > 0 && parts.has('drift')) specs.push({ name: internal.drift.partials, partitions: 1, config: big });
    if (models.length > 0 && parts.has('performance'))
      specs.push(
        { name: internal.performance.outcomes, partitions: outcomePartitions, config: big },
        { name: internal.performance.partials, partitions: 1, config: big },
      );
    if (specs.length > 0) await retryKafka(() => ensureTopics(admin, specs, logger));

    // ---- the stages ------------------------------------------------------------------------------
    if (models.length > 0 && parts.has('drift')) {
      const spec = driftPipeline({
        models,
        settings: topology.monitoring,
        topicPrefix,
        partialsTopic: internal.drift.partials,
        partitions: new Map(models.map((model) => [model.name, partitions.get(`${topicPrefix}predictions.${model.name}`) ?? 1])),
        catalog,
        serdeFor,
        schemaId: schemaId('monitoring.drift'),
        metrics: options.metrics,
      });
      stages.set(DRIFT_STAGE, await runPipeline(spec, options.stageOptions(DRIFT_STAGE)));
    }
    if (models.length > 0 && parts.has('performance')) {
      const spec = performancePipeline({
        models,
        settings: topology.monitoring,
        topicPrefix,
        outcomesTopic: internal.performance.outcomes,
        partialsTopic: internal.performance.partials,
        outcomePartitions,
        partitions,
        catalog,
        serdeFor,
        schemaId: schemaId('monitoring.performance'),
        metrics: options.metrics,
      });
      stages.set(PERFORMANCE_STAGE, await runPipeline(spec, options.stageOptions(PERFORMANCE_STAGE)));
    }
    if (topology.alerts.length > 0 && parts.has('alerts')) {
      const stage = alertsStage({
        rules: topology.alerts,
        topicPrefix,
        serdeFor,
        schemaId: schemaId('monitoring.alerts'),
        metrics: options.metrics,
      });
      stages.set(ALERTS_STAGE, await runStage(stage, options.stageOptions(ALERTS_STAGE)));
    }
    if (options.webhookUrl && topology.alerts.length > 0 && parts.has('webhook')) {
      const stage = webhookStage({ url: options.webhookUrl, topicPrefix, serdeFor, metrics: options.metrics, logger });
      stages.set(WEBHOOK_STAGE, await runStage(stage, { ...options.stageOptions(WEBHOOK_STAGE), guarantee: 'at_least_once' }));
    }
    if (options.retrain && topology.alerts.some((rule) => rule.action) && parts.has('actions')) {
      const stage = actionsStage({
        rules: topology.alerts,
        retrain: options.retrain,
        topicPrefix,
        serdeFor,
        schemaId: schemaId('monitoring.actions'),
        metrics: options.metrics,
        logger,
      });
      stages.set(ACTIONS_STAGE, await runStage(stage, options.stageOptions(ACTIONS_STAGE)));
    }
    if (options.lagGroups && topology.alerts.some((rule) => rule.condition.kind === 'consumer-lag') && parts.has('lag')) {
      lag = await startLagSampler({
        kafka,
        groups: options.lagGroups,
        topic: `${topicPrefix}monitoring.lag`,
        serde: serdeFor(),
        schemaId: schemaId('monitoring.lag'),
        intervalMs: options.lagIntervalMs ?? 30_000,
        logger,
      });
    }
  } catch (error) {
    for (const stage of stages.values()) await stage.stop().catch(() => undefined);
    await lag?.stop();
    throw error;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  logger.info({ stages: [...stages.keys()] }, 'monitoring started');

  const failed = Promise.race(
    [...stages].map(([name, stage]) =>
      stage.done.then(
        () => new Promise<Error>(() => undefined),
        (error: unknown) => new Error(`monitoring stage ${name} failed: ${errorMessage(error)}`, { cause: error }),
      ),
    ),
  );
  return {
    stages,
    failed: stages.size === 0 ? new Promise<Error>(() => undefined) : failed,
    async stop() {
      await lag?.stop();
      for (const stage of [...stages.values()].reverse()) await stage.stop();
    },
  };
}
