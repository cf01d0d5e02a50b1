import type avro from 'avsc';
import { errorMessage } from '../../common/errors.js';
import { childSpan } from '../../common/tracing.js';
import { NonFiniteScoreError } from '../../models/errors.js';
import type { LoadedModel, ModelWatcher } from '../../models/deployment.js';
import { rowFor } from '../../models/encoding.js';
import { type MetricsRegistry } from '../../common/metrics.js';
import { inferenceMetrics } from './metrics.js';
import { avroType, type AvroSerde } from '../../schemas/index.js';
import { EVENT_FEATURES, eventRow, type EventFeatures, type FeatureValues } from '../../topology/features.js';
import type { ModelDefinition } from '../../topology/models.js';
import { ValidationError, type OutputRecord, type RawRecord, type StageDefinition, type StreamRecord } from '../runtime/index.js';

/**
 * The inference stage of one model: events.<source> → the features of this very event, as the
 * features stage before it in the same task computed them (handed over in the record's scratch:
 * serving sees exactly what training replays) → the champion version, micro-batched through
 * onnxruntime-node (the records of a chunk are scored in one call) → predictions.<model>, exactly
 * once. Hot reload: each prediction uses the version in service when it is scored, and carries it,
 * with its role (CHAMPION, CANARY, FALLBACK) and the rollout that routed it; each version's row is
 * built from that version's own recorded inputs (a rollback after a definition change stays right).
 * Missing or late features, no model, or a failing model give a fallback prediction (the previous
 * version's score, else the model's documented fallback score) with the reason — counted, never a
 * crash. A failure to read features is an error (retried, then dead-lettered), never a fallback.
 */
export interface FeatureSource {
  /**
   * The view's values as of this event: null when the entity has none (or only expired ones),
   * `LATE` when the event came too late for the view (it has no row of its own).
   */
  valuesAt(view: string, entity: string, eventId: string, eventTime: number): Promise<FeatureValues | null | typeof LATE>;
}

/** The event is too late for a view: it counts in no window and has no row. */
export const LATE = 'late' as const;

/** Features from the event's scratch: the rows the features stage computed for it. */
export function eventFeatures(record: StreamRecord<unknown>): FeatureSource {
  const computed = record.scratch.get(EVENT_FEATURES) as EventFeatures | undefined;
  return {
    valuesAt: (view) =>
      Promise.resolve(computed === undefined ? null : computed.late.has(view) ? LATE : (eventRow(computed, view)?.values ?? null)),
  };
}

export interface InferenceOptions {
  readonly model: ModelDefinition;
  readonly watcher: ModelWatcher;
  /** Where features come from; by default the event's own, from the features stage before this one. */
  readonly features?: FeatureSource;
  readonly topicPrefix: string;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  /** Registered schema id of predictions.<model> values. */
  readonly schemaId: number;
  /** Registered schema id of predictions.<model>.shadow values (the same contract; by default schemaId). */
  readonly shadowSchemaId?: number;
  readonly metrics: MetricsRegistry;
  readonly now?: () => number;
}

type Value = Record<string, unknown>;

export interface Prediction {
  readonly event_id: string;
  readonly entity_id: string;
  readonly model_name: string;
  readonly model_version: number;
  readonly deployment: 'CHAMPION' | 'CANARY' | 'SHADOW' | 'FALLBACK';
  readonly score: number;
  readonly decision: boolean;
  readonly threshold: number;
  readonly features: Record<string, number | null>;
  /** The categorical inputs (one-hot encoded for the model). */
  readonly categories: Record<string, string | null>;
  readonly fallback_reason: string | null;
  readonly latency_ms: number;
  readonly event_time: number;
  readonly predicted_at: number;
  readonly deployment_id: string | null;
}

/** Scores one event's inputs with the model in service, falling back as documented. */
export async function predict(
  options: Pick<InferenceOptions, 'model' | 'watcher' | 'metrics' | 'now'> & { readonly features: FeatureSource },
  event: { readonly eventId: string; readonly entity: string; readonly eventTime: number; readonly value: Value },
  started: number,
): Promise<Prediction> {
  return (await predictWithShadow(options, event, started, false)).prediction;
}

/**
 * Scores one event with the model in service and, while a shadow rollout runs (and `shadow`),
 * with the shadow version too: the same inputs, each version's row from its own recorded inputs.
 * The shadow's prediction decides nothing; it is there for every decision the champion made.
 */
export async function predictWithShadow(
  options: Pick<InferenceOptions, 'model' | 'watcher' | 'metrics' | 'now'> & { readonly features: FeatureSource },
  event: { readonly eventId: string; readonly entity: string; readonly eventTime: number; readonly value: Value },
  started: number,
  shadow: boolean,
): Promise<{ readonly prediction: Prediction; readonly shadow?: Prediction }> {
  const { model, watcher } = options;
  const now = options.now ?? Date.now;
  const metrics = inferenceMetrics(options.metrics);
  const values: Record<string, number | null> = {};
  for (const field of model.fields) values[field] = typeof event.value[field] === 'number' ? event.value[field] : null;
  const categories: Record<string, string | null> = {};
  for (const field of model.categorical) categories[field] = typeof event.value[field] === 'string' ? event.value[field] : null;
  const plan = inputPlan(model, watcher);
  const missing: string[] = [];
  const late: string[] = [];
  for (const { view, features } of plan.views) {
    // A failure to read is not a missing feature: it propagates (retried, then dead-lettered).
    const found = await options.features.valuesAt(view, event.entity, event.eventId, event.eventTime);
    if (found === LATE) late.push(view);
    else if (!found) missing.push(view);
    for (const { feature, input } of features) values[input] = found === LATE ? null : (found?.[feature] ?? null);
  }
  // Event fields a version in service was trained on that today's definition no longer names.
  for (const input of plan.inputs) {
    if (!(input in values) && typeof event.value[input] === 'number') values[input] = event.value[input];
  }
  // The row each version was trained on: its own inputs by name, categorical ones one-hot over its vocabulary.
  const rowOf = (version: LoadedModel): (number | null)[] =>
    rowFor(version.metadata.inputs, version.metadata.categorical, values, categories);
  // Why no version can score this event, whichever it is.
  const inputProblem =
    late.length > 0 ? `late_event: ${late.join(', ')}` : missing.length > 0 ? `missing_features: ${missing.join(', ')}` : null;
  // Complete inputs are remembered: a blue-green candidate is warmed on the latest of them.
  if (inputProblem === null) watcher.remember(values, categories);
  const inputsReady = now();

  // The running canary's hash split picks the canary for some entities, the champion for the rest.
  const route = watcher.route(event.entity);
  // Taken with the route, after the inputs were read: both from one state of the watcher.
  const shadowing = shadow ? watcher.shadow() : undefined;
  let served: LoadedModel | undefined = route.model;
  let score: number | undefined;
  let reason: string | null = inputProblem;
  if (reason !== null) {
    // No version scores an event without its inputs.
  } else if (!served) {
    reason = `no_model: ${watcher.loadFailure() ?? `no version of ${model.name} is champion yet`}`;
  } else {
    // The aliased version failed to load: the previous one answers, marked as a fallback.
    const loadFailure = watcher.loadFailure();
    if (loadFailure) reason = `model_load_failed: ${loadFailure}; served by version ${served.version.version}`;
    try {
      const scoring = served;
      score = await childSpan('score', () => scoring.score(rowOf(scoring)), {
        'sluice.model': model.name,
        'sluice.model_version': scoring.version.version,
      });
    } catch (error) {
      reason = `${error instanceof NonFiniteScoreError ? 'non_finite_score' : 'model_error'}: version ${served.version.version}: ${errorMessage(error)}`;
      // A failing canary falls back to the champion; a failing champion to the version before it.
      served = route.role === 'CANARY' ? watcher.current() : watcher.previous();
      if (served) {
        try {
          score = await served.score(rowOf(served));
        } catch {
          served = undefined;
        }
      }
    }
  }
  const latency = now() - started;
  // The shadow scores the same inputs; its failure is its own (a fallback on its record), never the
  // decision's. Its latency is the inputs' plus its own scoring, comparable with the champion's.
  let shadowScore: number | undefined;
  let shadowReason: string | null = inputProblem;
  const shadowStarted = now();
  if (shadowing && shadowReason === null) {
    try {
      const scoring = shadowing.model;
      shadowScore = await childSpan('score', () => scoring.score(rowOf(scoring)), {
        'sluice.model': model.name,
        'sluice.model_version': scoring.version.version,
        'sluice.role': 'SHADOW',
      });
    } catch (error) {
      shadowReason = `${error instanceof NonFiniteScoreError ? 'non_finite_score' : 'model_error'}: version ${shadowing.model.version.version}: ${errorMessage(error)}`;
    }
  }
  const fallback = reason !== null;
  const final = score ?? model.fallbackScore;
  const version = served?.version.version ?? 0;
  if (fallback) metrics.fallbacks.inc({ model: model.name, reason: reason?.split(':')[0] ?? 'unknown' });
  metrics.predictions.inc({ model: model.name, version: String(version), outcome: fallback ? 'fallback' : 'model' });
  metrics.latencySeconds.observe({ model: model.name }, latency / 1000);
  const predictedAt = now();
  const prediction: Prediction = {
    event_id: event.eventId,
    entity_id: event.entity,
    model_name: model.name,
    model_version: version,
    deployment: fallback ? 'FALLBACK' : route.role,
    score: final,
    decision: final >= model.threshold,
    threshold: model.threshold,
    features: values,
    categories,
    fallback_reason: reason,
    latency_ms: latency,
    event_time: event.eventTime,
    predicted_at: predictedAt,
    deployment_id: route.deploymentId,
  };
  if (!shadowing) return { prediction };
  const shadowFinal = shadowScore ?? model.fallbackScore;
  metrics.shadowPredictions.inc({
    model: model.name,
    version: String(shadowing.model.version.version),
    outcome: shadowReason === null ? 'model' : 'fallback',
  });
  return {
    prediction,
    shadow: {
      ...prediction,
      model_version: shadowing.model.version.version,
      deployment: 'SHADOW',
      score: shadowFinal,
      // The threshold in force for the model, as for every version that decides.
      decision: shadowFinal >= model.threshold,
      fallback_reason: shadowReason,
      latency_ms: inputsReady - started + (now() - shadowStarted),
      deployment_id: shadowing.deploymentId,
    },
  };
}

/** What an event's inputs are read from, for the versions loaded now. */
interface InputPlan {
  readonly model: InferenceOptions['model'];
  readonly loaded: readonly (LoadedModel | undefined)[];
  /** Each view to read, with its features and their input names (`view.feature`). */
  readonly views: readonly { readonly view: string; readonly features: readonly { readonly feature: string; readonly input: string }[] }[];
  /** Every input of the loaded versions. */
  readonly inputs: readonly string[];
}

const plans = new WeakMap<ModelWatcher, InputPlan>();

/**
 * The views the definition names, and those a version in service was trained on (a rollback
 * after a definition change): each version's row is built from its own recorded inputs. Built
 * once per set of loaded versions, not per event.
 */
function inputPlan(model: InferenceOptions['model'], watcher: ModelWatcher): InputPlan {
  const current = watcher.current();
  const previous = watcher.previous();
  const candidate = watcher.candidate();
  const cached = plans.get(watcher);
  // Compared one by one: this runs for every event, and the plan rarely changes.
  if (cached?.model === model && cached.loaded[0] === current && cached.loaded[1] === previous && cached.loaded[2] === candidate)
    return cached;
  const loaded = [current, previous, candidate];
  const inputs = loaded.flatMap((version) => version?.metadata.inputs ?? []);
  const views = new Map<string, Set<string>>(model.features.map(({ view, features }) => [view.name, new Set(features)]));
  for (const input of inputs) {
    const dot = input.indexOf('.');
    if (dot < 0) continue;
    const view = input.slice(0, dot);
    views.set(view, (views.get(view) ?? new Set()).add(input.slice(dot + 1)));
  }
  const plan: InputPlan = {
    model,
    loaded,
    views: [...views].map(([view, features]) => ({
      view,
      features: [...features].map((feature) => ({ feature, input: `${view}.${feature}` })),
    })),
    inputs,
  };
  plans.set(watcher, plan);
  return plan;
}

export function inferenceStage(options: InferenceOptions): StageDefinition<Value> {
  const { model } = options;
  const now = options.now ?? Date.now;
  const inputTopic = `${options.topicPrefix}events.${model.source.name}`;
  const outputTopic = `${options.topicPrefix}predictions.${model.name}`;
  const shadowTopic = `${options.topicPrefix}predictions.${model.name}.shadow`;
  const serde = options.serdeFor(avroType(model.source.eventsSchema));
  const encoder = options.serdeFor();

  // ---- inputs ------------------------------------------------------------------------------
  const decode = async (raw: RawRecord): Promise<Value> => {
    if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'an events record without a value');
    return (await serde.decode(raw.value)) as Value;
  };

  // ---- transformation ----------------------------------------------------------------------
  // What scoring reads: built once; only features from the event itself differ per record.
  const scoringOptions = { model, watcher: options.watcher, metrics: options.metrics, now };
  const fixedFeatures = options.features === undefined ? undefined : { ...scoringOptions, features: options.features };
  const process = async (record: StreamRecord<Value>): Promise<OutputRecord[]> => {
    const started = now();
    const entity = record.value[model.source.entityField];
    if (typeof entity !== 'string' || entity === '')
      throw new ValidationError('MISSING', model.source.entityField, 'the event has no entity id');
    const { prediction, shadow } = await predictWithShadow(
      fixedFeatures ?? { ...scoringOptions, features: eventFeatures(record) },
      { eventId: String(record.value.event_id), entity, eventTime: record.eventTime, value: record.value },
      started,
      true,
    );

    // ---- outputs: the prediction, and a shadow's in the same transaction --------------------
    const output = async (topic: string, schemaId: number, value: Prediction): Promise<OutputRecord> => ({
      topic,
      key: entity,
      value: await encoder.encode(schemaId, value),
      headers: { 'sluice.event_id': value.event_id, 'sluice.model_version': String(value.model_version) },
    });
    return [
      await output(outputTopic, options.schemaId, prediction),
      ...(shadow ? [await output(shadowTopic, options.shadowSchemaId ?? options.schemaId, shadow)] : []),
    ];
  };

  return {
    name: `inference-${model.name}`,
    inputs: [inputTopic],
    decode,
    eventTime: (value, raw) => (typeof value.event_time === 'number' ? value.event_time : raw.timestamp),
    process,
    // Stateless: a chunk's events are scored together, in one onnxruntime call (outputs keep their order).
    ordering: 'parallel',
  };
}
