import type avro from 'avsc';
import { avroType, loadAvsc, type AvroSerde } from '../../schemas/index.js';
import { jsonSerde, type KeyValueStore, type Serde } from '../../state/index.js';
import {
  DriftMerger,
  DriftPartition,
  DriftSummary,
  decodeDriftPartial,
  encodeDriftPartial,
  type DriftPartial,
  type MergerState,
  type PartitionProgress,
  type PredictionInput,
} from '../../monitoring/index.js';
import type { ModelDefinition } from '../../topology/models.js';
import type { MonitoringSettings } from '../../topology/monitoring.js';
import { ValidationError, type OutputRecord, type PipelineSpec, type RawRecord, type StageDefinition } from '../runtime/index.js';
import type { ModelCatalogApi } from './catalog.js';
import { monitoringMetrics } from './metrics.js';
import type { MetricsRegistry } from '../../common/metrics.js';

/**
 * The drift stage (`monitoring.drift`), on the runtime in its own consumer group:
 *
 *   predictions.<model> ──► [drift: per partition, window summaries and blocks] ──► <group>-partials
 *   <group>-partials ──► [drift-merge: whole windows, verdicts] ──► monitoring.drift
 *
 * Both steps keep their state in RocksDB stores with changelogs and commit outputs, state and
 * offsets in one transaction (exactly once). Summaries are cached objects in the key-value store
 * (serialized once per commit, not per record) and deleted once their window is out, so the state
 * holds the open windows only: bounded per input per window, whatever the traffic.
 */
export interface DriftStageOptions {
  readonly models: readonly ModelDefinition[];
  readonly settings: MonitoringSettings;
  readonly topicPrefix: string;
  /** The internal topic between the two steps (one partition: one merger). */
  readonly partialsTopic: string;
  /** Partitions of each model's predictions topic. */
  readonly partitions: ReadonlyMap<string, number>;
  readonly catalog: ModelCatalogApi;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  /** Registered schema id of monitoring.drift values. */
  readonly schemaId: number;
  readonly metrics: MetricsRegistry;
}

/** What the drift stage reads from predictions.<model>. */
export interface DecodedPrediction extends PredictionInput {
  readonly model: string;
  readonly version: number;
}

export const DRIFT_STAGE = 'monitoring-drift';
export const DRIFT_MERGE_STAGE = 'monitoring-drift-merge';

/** Drift summaries as their bytes in the stores and changelogs. */
export const summarySerde: Serde<DriftSummary> = {
  serialize: (summary) => summary.toBuffer(),
  deserialize: (bytes) => DriftSummary.fromBuffer(bytes),
};

/** A prediction as the drift stage sees it (Avro-decoded predictions.avsc). */
export function predictionInput(value: Readonly<Record<string, unknown>>): DecodedPrediction {
  return {
    model: String(value.model_name),
    version: Number(value.model_version),
    features: (value.features ?? {}) as Record<string, number | null>,
    categories: (value.categories ?? {}) as Record<string, string | null>,
    score: Number(value.score),
    fallback: value.deployment === 'FALLBACK',
    eventTime: Number(value.event_time),
  };
}

/** A partition's last-N blocks: at most ⌈events / (blocks · partitions)⌉ predictions, within one tick. */
export function blockSizeOf(settings: MonitoringSettings, partitions: number): { size: number; tickMs: number } | undefined {
  return settings.lastN
    ? { size: Math.max(1, Math.ceil(settings.lastN.events / (settings.lastN.blocks * partitions))), tickMs: settings.lastN.tickMs }
    : undefined;
}

export function driftStage(options: DriftStageOptions): StageDefinition<DecodedPrediction> {
  const reader = options.serdeFor(avroType(loadAvsc('predictions')));
  const byTopic = new Map(options.models.map((model) => [`${options.topicPrefix}predictions.${model.name}`, model]));
  const { settings } = options;

  // ---- inputs --------------------------------------------------------------------------------
  const decode = async (raw: RawRecord): Promise<DecodedPrediction> => {
    if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'a prediction without a value');
    return predictionInput((await reader.decode(raw.value)) as Record<string, unknown>);
  };

  // ---- transformation: the partition's summaries; outputs: the partials they complete ----------
  return {
    name: DRIFT_STAGE,
    inputs: [...byTopic.keys()],
    decode,
    eventTime: (value) => value.eventTime,
    stores: [
      { name: 'summaries', kind: 'key-value', serde: summarySerde },
      { name: 'progress', kind: 'key-value', serde: jsonSerde<unknown>() },
    ],
    process: async (record, context): Promise<OutputRecord[]> => {
      const model = byTopic.get(record.topic)?.name ?? record.value.model;
      const partition = new DriftPartition(
        {
          model,
          partition: context.partition,
          partitions: options.partitions.get(model) ?? 1,
          windowMs: settings.windowMs,
          graceMs: settings.graceMs,
          blocks: blockSizeOf(settings, options.partitions.get(model) ?? 1),
          layout: (version) => options.catalog.layout(model, version),
        },
        context.store<KeyValueStore<DriftSummary>>('summaries'),
        context.store<KeyValueStore<PartitionProgress>>('progress'),
      );
      const partials = await partition.add(record.value);
      return partials.map((partial) => ({ topic: options.partialsTopic, key: model, value: encodeDriftPartial(partial) }));
    },
  };
}

export function driftMergeStage(options: DriftStageOptions): StageDefinition<DriftPartial> {
  const encoder = options.serdeFor();
  const outputTopic = `${options.topicPrefix}monitoring.drift`;
  const metrics = monitoringMetrics(options.metrics);
  return {
    name: DRIFT_MERGE_STAGE,
    inputs: [options.partialsTopic],
    decode: (raw) => {
      if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'a partial without a value');
      return decodeDriftPartial(raw.value);
    },
    stores: [
      { name: 'parts', kind: 'key-value', serde: summarySerde },
      { name: 'meta', kind: 'key-value', serde: jsonSerde<unknown>() },
    ],
    process: async (record, context): Promise<OutputRecord[]> => {
      const merger = new DriftMerger(
        {
          settings: options.settings,
          lastN: options.settings.lastN,
          reference: (model, version) => options.catalog.reference(model, version),
          layout: (model, version) => options.catalog.layout(model, version),
        },
        context.store<KeyValueStore<DriftSummary>>('parts'),
        context.store<KeyValueStore<MergerState>>('meta'),
      );
      const records = await merger.add(record.value);
      const outputs: OutputRecord[] = [];
      for (const drift of records) {
        if (drift.feature_kind === 'dataset') {
          metrics.driftWindows.inc({ model: drift.model_name, window: drift.window_kind, verdict: drift.verdict });
          if (drift.drift_share !== null)
            metrics.driftShare.set(
              { model: drift.model_name, version: String(drift.model_version), window: drift.window_kind },
              drift.drift_share,
            );
        }
        outputs.push({
          topic: outputTopic,
          key: drift.model_name,
          value: await encoder.encode(options.schemaId, drift),
          // The Kafka timestamp stays the time of evaluation, never the window's event time: the
          // broker's time retention deletes records whose timestamp is older than retention.ms at its
          // next check, so a replay of last year's predictions would lose its own results.
        });
      }
      return outputs;
    },
  };
}

/** The drift stage as a pipeline: one sub-topology per model's predictions, one for the merger. */
export function driftPipeline(options: DriftStageOptions): PipelineSpec {
  const partitionStage = driftStage(options);
  const mergeStage = driftMergeStage(options);
  return {
    name: DRIFT_STAGE,
    subtopologies: [
      ...options.models.map((model) => {
        const topic = `${options.topicPrefix}predictions.${model.name}`;
        return { name: topic, source: topic, steps: [{ stage: partitionStage, input: topic }] };
      }),
      { name: options.partialsTopic, source: options.partialsTopic, steps: [{ stage: mergeStage, input: options.partialsTopic }] },
    ],
  };
}
