import type avro from 'avsc';
import type { MetricsRegistry } from '../../common/metrics.js';
import { avroType, loadAvsc, type AvroSerde } from '../../schemas/index.js';
import { jsonSerde, type KeyValueStore } from '../../state/index.js';
import {
  OutcomeRouter,
  PerformanceMerger,
  PerformancePartition,
  decodeOutcome,
  decodePerformancePartial,
  encodeOutcome,
  encodePerformancePartial,
  type AccumulatorShape,
  type Outcome,
  type PerformancePartial,
} from '../../monitoring/index.js';
import type { ModelDefinition } from '../../topology/models.js';
import type { MonitoringSettings } from '../../topology/monitoring.js';
import { ValidationError, type OutputRecord, type PipelineSpec, type RawRecord, type StageDefinition } from '../runtime/index.js';
import type { ModelCatalogApi } from './catalog.js';
import { monitoringMetrics } from './metrics.js';

/**
 * The performance stage (`monitoring.performance`): predictions joined with their delayed labels
 * in event time, on the runtime in its own consumer group.
 *
 *   predictions.<model>, events.<label source> ──► [route: keyed by the scored event's id, marks] ──► <group>-outcomes
 *   <group>-outcomes ──► [join: per partition, windows of decided predictions] ──► <group>-partials
 *   <group>-partials ──► [merge: whole windows] ──► monitoring.performance
 *
 * Predictions are keyed by entity and labels by whatever their source is keyed by; the join key is
 * the scored event's id, so both are routed by it (as Kafka Streams repartitions before a join).
 * Every step is exactly once, with its state in RocksDB stores with changelogs.
 */
export interface PerformanceStageOptions {
  readonly models: readonly ModelDefinition[];
  readonly settings: MonitoringSettings;
  readonly topicPrefix: string;
  readonly outcomesTopic: string;
  readonly partialsTopic: string;
  /** Partitions of the outcomes topic. */
  readonly outcomePartitions: number;
  /** Partitions of every predictions and label topic, by topic name (prefix included). */
  readonly partitions: ReadonlyMap<string, number>;
  readonly catalog: ModelCatalogApi;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  /** Registered schema id of monitoring.performance values. */
  readonly schemaId: number;
  readonly metrics: MetricsRegistry;
  /** Marks go out when a router's event time enters a new slot of this size (default 1 min). */
  readonly markEveryMs?: number;
}

export const PERFORMANCE_ROUTE_STAGE = 'monitoring-performance-route';
export const PERFORMANCE_STAGE = 'monitoring-performance';
export const PERFORMANCE_MERGE_STAGE = 'monitoring-performance-merge';

type Routable =
  | { readonly kind: 'prediction'; readonly outcome: Outcome & { readonly id: string } }
  | { readonly kind: 'labels'; readonly outcomes: readonly (Outcome & { readonly id: string })[] };

function shapeOf(settings: MonitoringSettings): AccumulatorShape {
  return { scoreBins: settings.scoreBins, calibrationBins: settings.calibrationBins };
}

export function performanceRouteStage(options: PerformanceStageOptions): StageDefinition<Routable> {
  const { topicPrefix } = options;
  const predictions = options.serdeFor(avroType(loadAvsc('predictions')));
  const byPredictionTopic = new Map(options.models.map((model) => [`${topicPrefix}predictions.${model.name}`, model]));
  const byLabelTopic = new Map<string, { models: ModelDefinition[]; serde: AvroSerde }>();
  for (const model of options.models) {
    const topic = `${topicPrefix}events.${model.label.source.name}`;
    const entry = byLabelTopic.get(topic) ?? { models: [], serde: options.serdeFor(avroType(model.label.source.eventsSchema)) };
    entry.models.push(model);
    byLabelTopic.set(topic, entry);
  }

  // ---- inputs: a prediction, or a label event (for every model it labels) ---------------------
  const decode = async (raw: RawRecord): Promise<Routable> => {
    if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'a record without a value');
    const model = byPredictionTopic.get(raw.topic);
    if (model) {
      const value = (await predictions.decode(raw.value)) as Record<string, unknown>;
      return {
        kind: 'prediction',
        outcome: {
          type: 'prediction',
          model: model.name,
          version: Number(value.model_version),
          id: String(value.event_id),
          time: Number(value.event_time),
          score: Number(value.score),
          decision: value.decision === true,
          source: raw.partition,
        },
      };
    }
    const labels = byLabelTopic.get(raw.topic);
    if (!labels) throw new Error(`the performance router does not read ${raw.topic}`);
    const value = (await labels.serde.decode(raw.value)) as Record<string, unknown>;
    return {
      kind: 'labels',
      outcomes: labels.models.map((labelled) => ({
        type: 'label',
        model: labelled.name,
        // The scored event's id: its source's name and the id the label names (ingest's event ids).
        id: `${labelled.source.name}:${String(value[labelled.label.joinField])}`,
        time: Number(value.event_time),
        source: raw.partition,
      })),
    };
  };

  // ---- transformation: keyed by the join key, with progress marks; outputs: the outcomes topic --
  return {
    name: PERFORMANCE_ROUTE_STAGE,
    inputs: [...byPredictionTopic.keys(), ...byLabelTopic.keys()],
    decode,
    eventTime: (value) => (value.kind === 'prediction' ? value.outcome.time : (value.outcomes[0]?.time ?? 0)),
    stores: [{ name: 'progress', kind: 'key-value', serde: jsonSerde<unknown>() }],
    process: async (record, context): Promise<OutputRecord[]> => {
      const router = new OutcomeRouter(
        {
          stream: record.value.kind === 'prediction' ? 'prediction' : 'label',
          source: context.partition,
          outcomePartitions: options.outcomePartitions,
          markEveryMs: options.markEveryMs ?? 60_000,
        },
        context.store<KeyValueStore<number>>('progress'),
      );
      const outcomes = record.value.kind === 'prediction' ? [record.value.outcome] : record.value.outcomes;
      const outputs: OutputRecord[] = [];
      for (const outcome of outcomes)
        for (const routed of await router.route(outcome.model, outcome))
          outputs.push({
            topic: options.outcomesTopic,
            key: routed.key,
            value: encodeOutcome(routed.outcome),
            ...(routed.partition === undefined ? {} : { partition: routed.partition }),
          });
      return outputs;
    },
  };
}

export function performanceJoinStage(options: PerformanceStageOptions): StageDefinition<Outcome> {
  const models = new Map(
    options.models.map((model) => [
      model.name,
      {
        labelWindowMs: model.label.windowMs,
        predictionPartitions: options.partitions.get(`${options.topicPrefix}predictions.${model.name}`) ?? 1,
        labelPartitions: options.partitions.get(`${options.topicPrefix}events.${model.label.source.name}`) ?? 1,
      },
    ]),
  );
  const metrics = monitoringMetrics(options.metrics);
  return {
    name: PERFORMANCE_STAGE,
    inputs: [options.outcomesTopic],
    decode: (raw) => {
      if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'an outcome without a value');
      return decodeOutcome(raw.value);
    },
    eventTime: (value) => value.time,
    stores: [{ name: 'joined', kind: 'key-value', serde: jsonSerde<unknown>() }],
    process: async (record, context): Promise<OutputRecord[]> => {
      const join = new PerformancePartition(
        {
          partition: context.partition,
          partitions: options.outcomePartitions,
          windowMs: options.settings.windowMs,
          graceMs: options.settings.graceMs,
          shape: shapeOf(options.settings),
          models,
        },
        context.store<ConstructorParameters<typeof PerformancePartition>[1]>('joined'),
      );
      const partials = await join.add(record.value);
      for (const partial of partials)
        if (partial.kind === 'window' && partial.lateLabels > 0) metrics.lateLabels.inc({ model: partial.model }, partial.lateLabels);
      return partials.map((partial) => ({ topic: options.partialsTopic, key: partial.model, value: encodePerformancePartial(partial) }));
    },
  };
}

export function performanceMergeStage(options: PerformanceStageOptions): StageDefinition<PerformancePartial> {
  const encoder = options.serdeFor();
  const outputTopic = `${options.topicPrefix}monitoring.performance`;
  const metrics = monitoringMetrics(options.metrics);
  const byName = new Map(options.models.map((model) => [model.name, model]));
  return {
    name: PERFORMANCE_MERGE_STAGE,
    inputs: [options.partialsTopic],
    decode: (raw) => {
      if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'a partial without a value');
      return decodePerformancePartial(raw.value);
    },
    stores: [{ name: 'merged', kind: 'key-value', serde: jsonSerde<unknown>() }],
    process: async (record, context): Promise<OutputRecord[]> => {
      const merger = new PerformanceMerger(
        {
          shape: shapeOf(options.settings),
          labelWindowMs: (model) => byName.get(model)?.label.windowMs ?? 0,
          training: async (model, version) => {
            const registered = await options.catalog.version(model, version);
            return registered ? { metrics: registered.metrics, threshold: byName.get(model)?.threshold ?? null } : undefined;
          },
        },
        context.store<ConstructorParameters<typeof PerformanceMerger>[1]>('merged'),
      );
      const outputs: OutputRecord[] = [];
      for (const report of await merger.add(record.value)) {
        metrics.performanceWindows.inc({ model: report.model_name, stage: report.stage });
        if (report.stage === 'FINAL' && report.auc !== null)
          metrics.performanceAuc.set({ model: report.model_name, version: String(report.model_version) }, report.auc);
        outputs.push({
          topic: outputTopic,
          key: report.model_name,
          value: await encoder.encode(options.schemaId, report),
          // The Kafka timestamp stays the time of evaluation, never the window's event time: the
          // broker's time retention deletes records whose timestamp is older than retention.ms at its
          // next check, so a replay of last year's predictions would lose its own results.
        });
      }
      return outputs;
    },
  };
}

/** The performance stage as a pipeline: one sub-topology per input topic for the router, one for the join, one for the merger. */
export function performancePipeline(options: PerformanceStageOptions): PipelineSpec {
  const route = performanceRouteStage(options);
  const join = performanceJoinStage(options);
  const merge = performanceMergeStage(options);
  return {
    name: PERFORMANCE_STAGE,
    subtopologies: [
      ...route.inputs.map((topic) => ({ name: topic, source: topic, steps: [{ stage: route, input: topic }] })),
      { name: options.outcomesTopic, source: options.outcomesTopic, steps: [{ stage: join, input: options.outcomesTopic }] },
      { name: options.partialsTopic, source: options.partialsTopic, steps: [{ stage: merge, input: options.partialsTopic }] },
    ],
  };
}
