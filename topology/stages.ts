import type { MetricsRegistry } from '../monitoring/index.js';
import { AvroSerde, type SchemaIds } from '../schemas/index.js';
import { ingestStage } from '../streams/ingest.js';
import type { StageDefinition } from '../streams/runtime/index.js';
import { DEMO_SOURCE_DEFINITIONS } from './sources.js';

/** What a stage needs from its surroundings to be defined. */
export interface StageEnvironment {
  readonly topicPrefix: string;
  readonly registryUrl: string;
  /** Registered schema ids by subject (`events.transactions-value`, ...), prefix included. */
  readonly schemaIds: SchemaIds;
  readonly metrics: MetricsRegistry;
}

/** The stages of the topology, by name: `sluice run <name>` runs one, `sluice up` runs all. */
export const STAGES: Readonly<Record<string, (environment: StageEnvironment) => StageDefinition<Record<string, unknown>>>> = {
  ingest: ({ topicPrefix, registryUrl, schemaIds, metrics }) => ingestStage({
    sources: DEMO_SOURCE_DEFINITIONS,
    topicPrefix,
    serdeFor: (reader) => new AvroSerde(registryUrl, reader),
    schemaIds: {
      events: Object.fromEntries(DEMO_SOURCE_DEFINITIONS.map((source) => [source.name, schemaIds.get(`${topicPrefix}events.${source.name}-value`) ?? 0])),
      quality: schemaIds.get(`${topicPrefix}monitoring.quality-value`) ?? 0,
    },
    metrics,
  }),
};

export const STAGE_NAMES = Object.keys(STAGES);
