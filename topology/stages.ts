import type { Logger } from 'pino';
import { createKafka } from '../infra/kafka/index.js';
import type { MetricsRegistry } from '../monitoring/index.js';
import { AvroSerde, platformSubjects, predictionSubjects, viewSubjects, type SchemaIds, type SubjectSchema } from '../schemas/index.js';
import { featuresStage } from '../streams/features/stage.js';
import { ingestStage } from '../streams/ingest.js';
import type { StageDefinition } from '../streams/runtime/index.js';
import { publishFeatureViews } from './feature-registry.js';
import { DEMO_SOURCE_DEFINITIONS } from './sources.js';
import { DEMO_FEATURE_VIEWS } from './views.js';
import { DEMO_MODELS } from './models.js';

/** The feature views the topology computes. */
export const FEATURE_VIEWS = DEMO_FEATURE_VIEWS;
export const SOURCES = DEMO_SOURCE_DEFINITIONS;
/** The models the topology trains and serves. */
export const MODELS = DEMO_MODELS;

/** Every subject the topology writes: platform topics, sources, feature views. */
export function topologySubjects(prefix: string): SubjectSchema[] {
  return [...platformSubjects(prefix), ...viewSubjects(prefix, FEATURE_VIEWS.map((view) => view.name)), ...predictionSubjects(prefix, MODELS.map((model) => model.name))];
}

/** What a stage needs from its surroundings to be defined. */
export interface StageEnvironment {
  readonly topicPrefix: string;
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  /** Registered schema ids by subject (`events.transactions-value`, ...), prefix included. */
  readonly schemaIds: SchemaIds;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
}

type StageFactory = (environment: StageEnvironment) => Promise<StageDefinition<Record<string, unknown>>>;

/** The stages of the topology, by name: `sluice run <name>` runs one, `sluice up` runs all. */
export const STAGES: Readonly<Record<string, StageFactory>> = {
  ingest: ({ topicPrefix, registryUrl, schemaIds, metrics }) => Promise.resolve(ingestStage({
    sources: SOURCES,
    topicPrefix,
    serdeFor: (reader) => new AvroSerde(registryUrl, reader),
    schemaIds: {
      events: Object.fromEntries(SOURCES.map((source) => [source.name, schemaIds.get(`${topicPrefix}events.${source.name}-value`) ?? 0])),
      quality: schemaIds.get(`${topicPrefix}monitoring.quality-value`) ?? 0,
    },
    metrics,
  })),
  features: async ({ topicPrefix, brokers, registryUrl, schemaIds, metrics, logger }) => {
    // Definitions are published (a changed one gets a new version) before any row is computed.
    const versions = await publishFeatureViews(FEATURE_VIEWS, {
      kafka: createKafka({ brokers, clientId: 'sluice-feature-registry', logger }),
      topic: `${topicPrefix}registry.features`,
      registryUrl,
      schemaId: schemaIds.get(`${topicPrefix}registry.features-value`) ?? 0,
      logger,
    });
    return featuresStage({
      views: FEATURE_VIEWS,
      versions,
      topicPrefix,
      serdeFor: (reader) => new AvroSerde(registryUrl, reader),
      schemaIds: Object.fromEntries(FEATURE_VIEWS.map((view) => [view.name, schemaIds.get(`${topicPrefix}features.${view.name}-value`) ?? 0])),
      metrics,
    });
  },
};

export const STAGE_NAMES = Object.keys(STAGES);
