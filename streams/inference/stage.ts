import type avro from 'avsc';
import { errorMessage } from '../../common/errors.js';
import type { LoadedModel, ModelWatcher } from '../../models/deployment.js';
import { type MetricsRegistry } from '../../common/metrics.js';
import { inferenceMetrics } from './metrics.js';
import { avroType, type AvroSerde } from '../../schemas/index.js';
import type { FeatureValues } from '../../topology/features.js';
import { modelInputs, type ModelDefinition } from '../../topology/models.js';
import { ValidationError, type OutputRecord, type RawRecord, type StageDefinition, type StreamRecord } from '../runtime/index.js';

/**
 * The inference stage of one model: events.<source> → the event's features from the online
 * store (waiting briefly for the features stage to have seen this very event, so serving sees
 * what training saw) → the champion version, micro-batched through onnxruntime-node →
 * predictions.<model>, exactly once. Hot reload: each prediction uses the version in service when
 * it is scored, and carries it. Missing features, no model, or a failing model give a fallback
 * prediction (the previous version's score, else the model's documented fallback score) with the
 * reason — counted, never a crash.
 */
export interface FeatureSource {
  /** The view's values as of this event, or null when the entity has none (or only expired ones). */
  valuesAt(view: string, entity: string, eventId: string, eventTime: number): Promise<FeatureValues | null>;
}

export interface InferenceOptions {
  readonly model: ModelDefinition;
  readonly watcher: ModelWatcher;
  readonly features: FeatureSource;
  readonly topicPrefix: string;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  /** Registered schema id of predictions.<model> values. */
  readonly schemaId: number;
  readonly metrics: MetricsRegistry;
  readonly now?: () => number;
}

type Value = Record<string, unknown>;

export interface Prediction {
  readonly event_id: string;
  readonly entity_id: string;
  readonly model_name: string;
  readonly model_version: number;
  readonly deployment: 'CHAMPION' | 'FALLBACK';
  readonly score: number;
  readonly decision: boolean;
  readonly threshold: number;
  readonly features: Record<string, number | null>;
  readonly fallback_reason: string | null;
  readonly latency_ms: number;
  readonly event_time: number;
  readonly predicted_at: number;
}

/** Scores one event's inputs with the model in service, falling back as documented. */
export async function predict(
  options: Pick<InferenceOptions, 'model' | 'watcher' | 'features' | 'metrics' | 'now'>,
  event: { readonly eventId: string; readonly entity: string; readonly eventTime: number; readonly value: Value },
  started: number,
): Promise<Prediction> {
  const { model, watcher } = options;
  const now = options.now ?? Date.now;
  const metrics = inferenceMetrics(options.metrics);
  const inputs = modelInputs(model);
  const values: Record<string, number | null> = {};
  for (const field of model.fields) values[field] = typeof event.value[field] === 'number' ? event.value[field] : null;
  const missing: string[] = [];
  for (const { view, features } of model.features) {
    // An online store that cannot answer (not running here, entity owned elsewhere) is missing features too.
    const found = await options.features.valuesAt(view.name, event.entity, event.eventId, event.eventTime).catch(() => null);
    if (!found) missing.push(view.name);
    for (const feature of features) values[`${view.name}.${feature}`] = found?.[feature] ?? null;
  }
  const row = inputs.map((input) => values[input] ?? null);

  let served: LoadedModel | undefined = watcher.current();
  let score: number | undefined;
  let reason: string | null = null;
  if (missing.length > 0) {
    reason = `missing_features: ${missing.join(', ')}`;
  } else if (!served) {
    reason = `no_model: ${watcher.loadFailure() ?? `no version of ${model.name} is champion yet`}`;
  } else {
    // The aliased version failed to load: the previous one answers, marked as a fallback.
    const loadFailure = watcher.loadFailure();
    if (loadFailure) reason = `model_load_failed: ${loadFailure}; served by version ${served.version.version}`;
    try {
      score = await served.score(row);
    } catch (error) {
      reason = `model_error: version ${served.version.version}: ${errorMessage(error)}`;
      served = watcher.previous();
      if (served) {
        try {
          score = await served.score(row);
        } catch {
          served = undefined;
        }
      }
    }
  }
  const fallback = reason !== null;
  const final = score ?? model.fallbackScore;
  const version = served?.version.version ?? 0;
  if (fallback) metrics.fallbacks.inc({ model: model.name, reason: reason?.split(':')[0] ?? 'unknown' });
  metrics.predictions.inc({ model: model.name, version: String(version), outcome: fallback ? 'fallback' : 'model' });
  const latency = now() - started;
  metrics.latencySeconds.observe({ model: model.name }, latency / 1000);
  return {
    event_id: event.eventId,
    entity_id: event.entity,
    model_name: model.name,
    model_version: version,
    deployment: fallback ? 'FALLBACK' : 'CHAMPION',
    score: final,
    decision: final >= model.threshold,
    threshold: model.threshold,
    features: values,
    fallback_reason: reason,
    latency_ms: latency,
    event_time: event.eventTime,
    predicted_at: now(),
  };
}

export function inferenceStage(options: InferenceOptions): StageDefinition<Value> {
  const { model } = options;
  const now = options.now ?? Date.now;
  const inputTopic = `${options.topicPrefix}events.${model.source.name}`;
  const outputTopic = `${options.topicPrefix}predictions.${model.name}`;
  const serde = options.serdeFor(avroType(model.source.eventsSchema));
  const encoder = options.serdeFor();

  // ---- inputs ------------------------------------------------------------------------------
  const decode = async (raw: RawRecord): Promise<Value> => {
    if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'an events record without a value');
    return (await serde.decode(raw.value)) as Value;
  };

  // ---- transformation ----------------------------------------------------------------------
  const process = async (record: StreamRecord<Value>): Promise<OutputRecord[]> => {
    const started = now();
    const entity = record.value[model.source.entityField];
    if (typeof entity !== 'string' || entity === '')
      throw new ValidationError('MISSING', model.source.entityField, 'the event has no entity id');
    const prediction = await predict(
      options,
      { eventId: String(record.value.event_id), entity, eventTime: record.eventTime, value: record.value },
      started,
    );

    // ---- outputs: the prediction ----------------------------------------------------------
    return [
      {
        topic: outputTopic,
        key: entity,
        value: await encoder.encode(options.schemaId, prediction),
        headers: { 'sluice.event_id': prediction.event_id, 'sluice.model_version': String(prediction.model_version) },
      },
    ];
  };

  return {
    name: `inference-${model.name}`,
    inputs: [inputTopic],
    decode,
    eventTime: (value, raw) => (typeof value.event_time === 'number' ? value.event_time : raw.timestamp),
    process,
  };
}
