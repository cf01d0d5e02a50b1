import type avro from 'avsc';
import type { Logger } from 'pino';
import type { MetricsRegistry } from '../common/metrics.js';
import { createKafka } from '../kafka/index.js';
import type { ModelWatcher } from '../models/deployment.js';
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
import { inferenceStage } from '../streams/inference/stage.js';
import { ingestStage } from '../streams/ingest/stage.js';
import { singleStagePipeline, type PipelineSpec, type StageDefinition, type StepSpec } from '../streams/runtime/index.js';
import type { Topology } from '../topology/index.js';

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

/** What the stages need from their surroundings to be defined. */
export interface StageEnvironment {
  readonly topology: Topology;
  readonly topicPrefix: string;
  readonly brokers: readonly string[];
  readonly registryUrl: string;
  /** Registered schema ids by subject (`events.transactions-value`, ...), prefix included. */
  readonly schemaIds: SchemaIds;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  /** The model followed by each inference stage (those without one are not defined). */
  readonly watchers: ReadonlyMap<string, ModelWatcher>;
}

type Stage = StageDefinition<Record<string, unknown>>;

/** The stages of a topology, defined: ingest, features, one inference stage per model. */
export interface TopologyStages {
  readonly ingest: Stage;
  readonly features: Stage;
  /** Features for the stages after it only (no rows written): what a standalone inference process computes for itself. */
  readonly featuresInMemory: Stage;
  readonly inference: ReadonlyMap<string, Stage>;
}

export async function defineStages(environment: StageEnvironment): Promise<TopologyStages> {
  const { topology, topicPrefix, registryUrl, schemaIds, metrics, logger } = environment;
  const serdeFor = (reader?: avro.Type): AvroSerde => new AvroSerde(registryUrl, reader);
  // Definitions are published (a changed one gets a new version) before any row is computed.
  const versions = await publishFeatureViews(topology.views, {
    kafka: createKafka({ brokers: environment.brokers, clientId: 'sluice-feature-registry', logger }),
    topic: `${topicPrefix}registry.features`,
    registryUrl,
    schemaId: schemaIds.get(`${topicPrefix}registry.features-value`) ?? 0,
    logger,
  });
  const features = (emitRows: boolean): Stage =>
    featuresStage({
      views: topology.views,
      versions,
      topicPrefix,
      serdeFor,
      schemaIds: Object.fromEntries(
        topology.views.map((view) => [view.name, schemaIds.get(`${topicPrefix}features.${view.name}-value`) ?? 0]),
      ),
      metrics,
      emitRows,
    });
  const inference = new Map<string, Stage>();
  for (const model of topology.models) {
    const watcher = environment.watchers.get(model.name);
    if (!watcher) continue;
    inference.set(
      model.name,
      inferenceStage({
        model,
        watcher,
        topicPrefix,
        serdeFor,
        schemaId: schemaIds.get(`${topicPrefix}predictions.${model.name}-value`) ?? 0,
        shadowSchemaId: schemaIds.get(`${topicPrefix}predictions.${model.name}.shadow-value`) ?? 0,
        metrics,
      }),
    );
  }
  return {
    ingest: ingestStage({
      sources: topology.sources,
      topicPrefix,
      serdeFor,
      schemaIds: {
        events: Object.fromEntries(
          topology.sources.map((source) => [source.name, schemaIds.get(`${topicPrefix}events.${source.name}-value`) ?? 0]),
        ),
        quality: schemaIds.get(`${topicPrefix}monitoring.quality-value`) ?? 0,
      },
      metrics,
    }),
    features: features(true),
    featuresInMemory: features(false),
    inference,
  };
}

/**
 * The fused pipeline of a topology: per source, one sub-topology reading `raw.<source>` —
 * ingest, then (on `events.<source>`, handed over in memory) the features of its views, then the
 * inference of each model scoring that source, with the features of that very event.
 */
export function topologyPipeline(topology: Topology, stages: TopologyStages, prefix: string): PipelineSpec {
  return {
    name: 'pipeline',
    subtopologies: topology.sources.map((source) => {
      const events = `${prefix}events.${source.name}`;
      const steps: StepSpec[] = [{ stage: stages.ingest, input: `${prefix}raw.${source.name}` }];
      if (topology.views.some((view) => view.source.name === source.name)) steps.push({ stage: stages.features, input: events });
      for (const model of topology.models.filter((candidate) => candidate.source.name === source.name)) {
        const inference = stages.inference.get(model.name);
        if (inference) steps.push({ stage: inference, input: events });
      }
      return { name: source.name, source: `${prefix}raw.${source.name}`, steps };
    }),
  };
}

/** What `sluice run` and `sluice up` can run: the fused pipeline, or one stage alone. */
export function stageNames(topology: Topology): string[] {
  return ['pipeline', 'ingest', 'features', ...topology.models.map((model) => `inference-${model.name}`)];
}

/**
 * The pipeline a name runs. `pipeline`: everything fused. `ingest`, `features`: that stage alone,
 * reading its input topics. `inference-<model>`: the model over `events.<source>`, with the
 * features of each event computed in the same task (its own copy of the entity state; no rows
 * written) — so a separate inference process scores exactly what the fused one would.
 */
export function pipelineFor(name: string, topology: Topology, stages: TopologyStages, prefix: string): PipelineSpec | undefined {
  if (name === 'pipeline') return topologyPipeline(topology, stages, prefix);
  if (name === 'ingest') return singleStagePipeline(stages.ingest);
  if (name === 'features') return singleStagePipeline(stages.features);
  const model = topology.models.find((candidate) => `inference-${candidate.name}` === name);
  const inference = model ? stages.inference.get(model.name) : undefined;
  if (!model || !inference) return undefined;
  const events = `${prefix}events.${model.source.name}`;
  return {
    name,
    subtopologies: [
      {
        name: model.source.name,
        source: events,
        steps: [
          { stage: stages.featuresInMemory, input: events },
          { stage: inference, input: events },
        ],
      },
    ],
  };
}
