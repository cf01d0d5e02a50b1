import path from 'node:path';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import type { MetricsRegistry } from '../common/metrics.js';
import { createKafka } from '../kafka/index.js';
import { NotEnoughHistoryError, trainModel } from '../jobs/train.js';
import { readModelRegistry } from '../models/registry.js';
import type { SchemaIds } from '../schemas/index.js';
import { publishFeatureViews } from '../streams/features/registry.js';
import { startMonitoring, type MonitoringPart, type RetrainExecutor, type RunningMonitoring } from '../streams/monitoring/index.js';
import type { StageOptions } from '../streams/runtime/index.js';
import type { Topology } from '../topology/index.js';
import { stageOptionsFor } from './launch.js';

/**
 * The monitoring stages of a topology, composed: drift, performance, alerts (each in its own
 * consumer group, beside the pipeline), the alert webhook when SLUICE_ALERT_WEBHOOK_URL is set,
 * and retraining as the action of rules that name it (the train job on the latest window of
 * replayed topics; the result registered as `candidate`, or champion when the model's policy is
 * `auto`).
 */
export interface MonitoringLaunchOptions {
  readonly config: SluiceConfig;
  readonly topology: Topology;
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  readonly schemaIds: SchemaIds;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  readonly parts?: readonly MonitoringPart[];
  /** Runtime settings beyond the config's (tests shorten group timeouts). */
  readonly stageOverrides?: Partial<StageOptions>;
  /** Consumer groups whose lag consumer-lag rules watch. */
  readonly lagGroups?: readonly { readonly group: string; readonly topics: readonly string[] }[];
}

/** Monitoring is not on the latency path: commits every half second keep changelog traffic low. */
const MONITORING_COMMIT_INTERVAL_MS = 500;

export function monitoringStageOptions(
  name: string,
  options: Pick<MonitoringLaunchOptions, 'config' | 'brokers' | 'metrics' | 'logger' | 'stageOverrides'>,
): StageOptions {
  return {
    ...stageOptionsFor(name, options),
    guarantee: 'exactly_once',
    commitIntervalMs: Math.max(options.config.stages.commitIntervalMs, MONITORING_COMMIT_INTERVAL_MS),
    ...options.stageOverrides,
  };
}

export async function launchMonitoring(options: MonitoringLaunchOptions): Promise<RunningMonitoring> {
  const { config, topology, logger } = options;
  const artifactsDir = path.join(config.dataDir, 'models');
  return startMonitoring({
    topology,
    brokers: options.brokers,
    registryUrl: options.registryUrl,
    schemaIds: options.schemaIds,
    topicPrefix: config.topicPrefix,
    artifactsDir,
    stageOptions: (name) => monitoringStageOptions(name, options),
    metrics: options.metrics,
    logger,
    ...(options.parts ? { parts: options.parts } : {}),
    ...(config.alerts.webhookUrl ? { webhookUrl: config.alerts.webhookUrl } : {}),
    ...(options.lagGroups ? { lagGroups: options.lagGroups } : {}),
    retrain: retrainExecutor({ ...options, artifactsDir }),
  });
}

/**
 * Retraining for an alert: the train job over the event time [window end − training window,
 * window end) of the alert, registered with the alert and rule in its lineage. Idempotent per
 * alert: a version already trained for it is reported (SKIPPED), not trained again.
 */
export function retrainExecutor(
  options: Pick<MonitoringLaunchOptions, 'config' | 'topology' | 'brokers' | 'registryUrl' | 'schemaIds' | 'logger'> & {
    readonly artifactsDir: string;
  },
): RetrainExecutor {
  const { config, topology, logger } = options;
  const kafka = createKafka({ brokers: options.brokers, clientId: 'sluice-retrain', logger });
  const registry = { kafka, topic: `${config.topicPrefix}registry.models`, registryUrl: options.registryUrl };
  return async (alert, action) => {
    const model = topology.models.find((candidate) => candidate.name === alert.model_name);
    if (!model) throw new Error(`alert ${alert.alert_id} names model ${alert.model_name ?? '?'}, which the topology does not declare`);
    const to = alert.window_end ?? alert.at;
    const from = to - action.trainingWindowMs;
    const existing = (await readModelRegistry(registry)).find(
      (version) => version.name === model.name && version.params.trigger_alert === alert.alert_id,
    );
    if (existing) {
      return {
        status: 'SKIPPED',
        version: existing.version,
        aliases: existing.aliases,
        runId: existing.run_id,
        from,
        to,
        metrics: existing.metrics,
        message: `version ${existing.version} was already trained for this alert`,
      };
    }
    const versions = await publishFeatureViews(topology.views, {
      kafka,
      topic: `${config.topicPrefix}registry.features`,
      registryUrl: options.registryUrl,
      schemaId: options.schemaIds.get(`${config.topicPrefix}registry.features-value`) ?? 0,
      logger,
    });
    const aliases = model.promotion === 'auto' ? ['champion'] : ['candidate'];
    try {
      const report = await trainModel({
        kafka,
        topicPrefix: config.topicPrefix,
        registryUrl: options.registryUrl,
        modelsSchemaId: options.schemaIds.get(`${config.topicPrefix}registry.models-value`) ?? 0,
        versions,
        artifactsDir: options.artifactsDir,
        model,
        range: { eventTime: { from, to } },
        aliases,
        lineage: { trigger_alert: alert.alert_id, trigger_rule: alert.rule },
        // The experiment run records the alert that started it (registry.experiments).
        trigger: { kind: 'alert', alertId: alert.alert_id },
        logger,
      });
      return {
        status: 'SUCCEEDED',
        version: report.version.version,
        aliases: report.version.aliases,
        runId: report.version.run_id,
        from,
        to,
        metrics: report.version.metrics,
        message: `${model.name} v${report.version.version} trained on [${new Date(from).toISOString()}, ${new Date(to).toISOString()}) and registered as ${aliases.join(', ')} (held-out AUC ${report.evaluation.auc.toFixed(4)})`,
      };
    } catch (error) {
      if (!(error instanceof NotEnoughHistoryError)) throw error;
      return { status: 'FAILED', version: null, aliases: [], runId: null, from, to, metrics: {}, message: error.message };
    }
  };
}
