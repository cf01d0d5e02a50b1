import type { Admin, Kafka } from 'kafkajs';
import { topologySubjects } from '../../app/stages.js';
import { silentLogger } from '../../common/logger.js';
import { retryKafka, waitForTopics } from '../../kafka/index.js';
import demo from '../../examples/fraud/sluice.config.js';
import { toOnnx, type ScoringNetwork } from '../../models/network.js';
import { ArtifactStore, baselineOf, registerModelVersion } from '../../models/registry.js';
import { registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import { modelInputs } from '../../topology/index.js';

/**
 * Everything the fraud demo's fused pipeline needs on a cluster, without vitest (the pipeline
 * tests and `npm run bench -- pipeline` share it): its topics, a schema registry, the feature
 * registry, and a champion model — a fixed logistic regression, so scores are known without
 * training.
 */
export interface DemoSetup {
  readonly registry: RunningSchemaRegistry;
  readonly ids: ReadonlyMap<string, number>;
  readonly versions: ReadonlyMap<string, number>;
  readonly network: ScoringNetwork;
  readonly inputs: readonly string[];
}

const model = demo.models.find((candidate) => candidate.name === 'fraud')!;

/** A fixed logistic regression over the fraud model's inputs: amount and card activity raise the score. */
export function fixedNetwork(inputs: readonly string[]): ScoringNetwork {
  const width = inputs.length;
  const weights = Float32Array.from(inputs.map((input, index) => (input === 'amount' ? 0.9 : 0.3 - index * 0.02)));
  return {
    features: inputs,
    mean: new Float32Array(width).fill(0),
    std: Float32Array.from(inputs.map((input) => (input.includes('amount') ? 200 : 5))),
    layers: [{ inputs: width, outputs: 1, weights, bias: Float32Array.from([-2]), activation: 'sigmoid' }],
  };
}

export async function setUpDemo(options: {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly brokers: readonly string[];
  readonly prefix: string;
  readonly partitions: number;
  readonly modelsDir: string;
}): Promise<DemoSetup> {
  const { kafka, admin, prefix, partitions } = options;
  const logger = silentLogger();
  const create = (topic: string, count: number, config: Record<string, string> = {}) => ({
    topic: `${prefix}${topic}`,
    numPartitions: count,
    replicationFactor: 1,
    configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
  });
  // A fresh topic's metadata can lag behind its creation: retriable, retried (creating it again is a no-op).
  await retryKafka(() =>
    admin.createTopics({
      waitForLeaders: true,
      topics: [
        ...demo.sources.flatMap((source) => [create(`raw.${source.name}`, partitions), create(`events.${source.name}`, partitions)]),
        ...demo.views.map((view) => create(`features.${view.name}`, partitions)),
        create('predictions.fraud', partitions),
        create('dlq', 1),
        create('monitoring.quality', 1),
        create('registry.features', 1, { 'cleanup.policy': 'compact' }),
        create('registry.models', 1, { 'cleanup.policy': 'compact' }),
      ],
    }),
  );
  await waitForTopics(admin, [
    ...demo.sources.flatMap((source) => [`${prefix}raw.${source.name}`, `${prefix}events.${source.name}`]),
    ...demo.views.map((view) => `${prefix}features.${view.name}`),
    ...['predictions.fraud', 'dlq', 'monitoring.quality', 'registry.features', 'registry.models'].map((topic) => `${prefix}${topic}`),
  ]);
  const registry = await startSchemaRegistry({ brokers: options.brokers, topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
  const ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
  const versions = await publishFeatureViews(demo.views, {
    kafka,
    topic: `${prefix}registry.features`,
    registryUrl: registry.url,
    schemaId: ids.get(`${prefix}registry.features-value`) ?? 0,
    logger,
  });
  // The champion: a fixed network, registered as a trained one would be.
  const inputs = modelInputs(model);
  const network = fixedNetwork(inputs);
  const sha = await new ArtifactStore(options.modelsDir).put(toOnnx(network, 'fraud'), {
    name: 'fraud',
    inputs,
    fill: [...network.mean],
    threshold: model.threshold,
    trainer: 'fixed',
    metrics: {},
    baseline: Object.fromEntries(inputs.map((input) => [input, baselineOf([])])),
  });
  await registerModelVersion(
    { kafka, topic: `${prefix}registry.models`, registryUrl: registry.url, schemaId: ids.get(`${prefix}registry.models-value`) ?? 0 },
    {
      name: 'fraud',
      artifact_sha256: sha,
      trainer: 'fixed',
      params: {},
      metrics: {},
      dataset: { ranges: [], feature_versions: Object.fromEntries(versions) },
      code_commit: null,
      run_id: null,
      created_at: Date.now(),
    },
    ['champion'],
  );
  return { registry, ids, versions, network, inputs };
}
