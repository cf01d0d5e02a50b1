import type { Logger } from 'pino';
import type { MetricsRegistry } from '../common/metrics.js';
import { createKafka } from '../kafka/index.js';
import {
  AvroSerde,
  platformSubjects,
  predictionSubjects,
  sourceSubjects,
  viewSubjects,
  type SchemaIds,
  type SubjectSchema,
} from '../schemas/index.js';
import { featuresStage } from '../streams/features/stage.js';
import { publishFeatureViews } from '../streams/features/registry.js';
import { ingestStage } from '../streams/ingest/stage.js';
import type { StageDefinition } from '../streams/runtime/index.js';
import type { Topology } from '../topology/index.js';
import { STAGE_NAMES } from './stage-names.js';

/** Every subject a topology writes: platform topics, its sources, feature views and models. */
export function topologySubjects(prefix: string, topology: Topology): SubjectSchema[] {
  return [
    ...platformSubjects(prefix),
    ...topology.sources.flatMap((source) => sourceSubjects(prefix, source.name, source.rawSchema, source.eventsSchema)),
    ...viewSubjects(
      prefix,
      topology.views.map((view) => view.name),
    ),
    ...predictionSubjects(
      prefix,
      topology.models.map((model) => model.name),
    ),
  ];
}

/** What a stage needs from its surroundings to be defined. */
export interface StageEnvironment {
  readonly topology: Topology;
  readonly topicPrefix: string;
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  /** Registered schema ids by subject (`events.transactions-value`, ...), prefix included. */
  readonly schemaIds: SchemaIds;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
}

type StageFactory = (environment: StageEnvironment) => Promise<StageDefinition<Record<string, unknown>>>;

/** The stages of a topology, by name: `sluice run <name>` runs one, `sluice up` runs all. */
export const STAGES: Readonly<Record<string, StageFactory>> = {
  ingest: ({ topology, topicPrefix, registryUrl, schemaIds, metrics }) =>
    Promise.resolve(
      ingestStage({
        sources: topology.sources,
        topicPrefix,
        serdeFor: (reader) => new AvroSerde(registryUrl, reader),
        schemaIds: {
          events: Object.fromEntries(
            topology.sources.map((source) => [source.name, schemaIds.get(`${topicPrefix}events.${source.name}-value`) ?? 0]),
          ),
          quality: schemaIds.get(`${topicPrefix}monitoring.quality-value`) ?? 0,
        },
        metrics,
      }),
    ),
  features: async ({ topology, topicPrefix, brokers, registryUrl, schemaIds, metrics, logger }) => {
    // Definitions are published (a changed one gets a new version) before any row is computed.
    const versions = await publishFeatureViews(topology.views, {
      kafka: createKafka({ brokers, clientId: 'sluice-feature-registry', logger }),
      topic: `${topicPrefix}registry.features`,
      registryUrl,
      schemaId: schemaIds.get(`${topicPrefix}registry.features-value`) ?? 0,
      logger,
    });
    return featuresStage({
      views: topology.views,
      versions,
      topicPrefix,
      serdeFor: (reader) => new AvroSerde(registryUrl, reader),
      schemaIds: Object.fromEntries(
        topology.views.map((view) => [view.name, schemaIds.get(`${topicPrefix}features.${view.name}-value`) ?? 0]),
      ),
      metrics,
    });
  },
};

export { STAGE_NAMES };
