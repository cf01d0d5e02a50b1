import type { Kafka } from 'kafkajs';
import { readRanges, resolveRanges, type PartitionRange } from '../kafka/topic-range.js';
import { replayFeatures } from './replay.js';
import { planRange, type EventRange } from './range.js';
import { pointInTimeJoin, type Label } from '../offline/point-in-time.js';
import { avroType, AvroSerde } from '../schemas/index.js';
import type { FeatureRow } from '../streams/features/engine.js';
import { modelInputs, type ModelDefinition } from '../topology/models.js';

/**
 * A model's training set from replayed topics: every scored event whose label is known — a label
 * event naming it within the label window (1), or no label although the window has passed (0) —
 * with its inputs as of the event time (point-in-time: feature rows at or before it, never later).
 * A range (event time by default) selects the scored events; labels and feature history are read
 * whole, so the events at the range's start get the same features and labels as any other.
 */
export interface TrainingSet {
  readonly inputs: readonly string[];
  readonly rows: (number | null)[][];
  /** The model's categorical inputs (its `categorical` fields) and their values, row by row. */
  readonly categorical: readonly string[];
  readonly categoryRows: (string | null)[][];
  readonly labels: number[];
  readonly times: number[];
  readonly eventIds: string[];
  /** The offsets read, per topic: the dataset's lineage. */
  readonly ranges: readonly { readonly topic: string; readonly partition: number; readonly start: string; readonly end: string }[];
  readonly featureVersions: Readonly<Record<string, number>>;
  /** Scored events seen, and those left out because their label is not known yet. */
  readonly events: number;
  readonly unlabelled: number;
}

export interface DatasetOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  readonly versions: ReadonlyMap<string, number>;
  /** The scored events to train on (default: all). */
  readonly range?: EventRange;
  readonly onProgress?: (read: number, total: number) => void;
}

interface ScoredEvent {
  readonly eventId: string;
  readonly sourceId: string;
  readonly entity: string;
  readonly time: number;
  readonly fields: (number | null)[];
  readonly categories: (string | null)[];
}

export async function buildTrainingSet(model: ModelDefinition, options: DatasetOptions): Promise<TrainingSet> {
  const ranges: TrainingSet['ranges'][number][] = [];
  const record = (topic: string, read: readonly PartitionRange[]): void => {
    for (const range of read) ranges.push({ topic, partition: range.partition, start: range.from.toString(), end: range.to.toString() });
  };

  // ---- inputs: scored events, label events, and feature rows by replay ------------------------
  const eventsTopic = `${options.topicPrefix}events.${model.source.name}`;
  const plan = await planRange(options.kafka, eventsTopic, options.range);
  const eventRanges = plan.read;
  const eventSerde = new AvroSerde(options.registryUrl, avroType(model.source.eventsSchema));
  const events: ScoredEvent[] = [];
  let newest = Number.NEGATIVE_INFINITY;
  await readRanges(options.kafka, eventsTopic, eventRanges, async (partition, message) => {
    if (!message.value) return;
    const value = (await eventSerde.decode(message.value)) as Record<string, unknown>;
    const time = Number(value.event_time);
    newest = Math.max(newest, time);
    if (!plan.selects(partition, BigInt(message.offset), time)) return;
    events.push({
      eventId: String(value.event_id),
      sourceId: String(value[model.source.idField]),
      entity: String(value[model.source.entityField]),
      time,
      fields: model.fields.map((field) => (typeof value[field] === 'number' ? value[field] : null)),
      categories: model.categorical.map((field) => (typeof value[field] === 'string' ? value[field] : null)),
    });
  });
  record(eventsTopic, eventRanges);

  const labelTopic = `${options.topicPrefix}events.${model.label.source.name}`;
  const labelRanges = await resolveRanges(options.kafka, labelTopic);
  const labelSerde = new AvroSerde(options.registryUrl, avroType(model.label.source.eventsSchema));
  const labelTimes = new Map<string, number>();
  await readRanges(options.kafka, labelTopic, labelRanges, async (_partition, message) => {
    if (!message.value) return;
    const value = (await labelSerde.decode(message.value)) as Record<string, unknown>;
    const key = String(value[model.label.joinField]);
    const time = Number(value.event_time);
    newest = Math.max(newest, time);
    labelTimes.set(key, Math.min(time, labelTimes.get(key) ?? Number.POSITIVE_INFINITY));
  });
  record(labelTopic, labelRanges);

  const views = model.features.map((entry) => entry.view);
  const rows: FeatureRow[] = [];
  const report = await replayFeatures({
    kafka: options.kafka,
    topicPrefix: options.topicPrefix,
    registryUrl: options.registryUrl,
    views,
    versions: options.versions,
    range: featureRange(views, options.range),
    onRows: (batch) => void rows.push(...batch),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  for (const [topic, read] of Object.entries(report.ranges)) if (topic !== eventsTopic) record(topic, read);

  // ---- transformation: labels by join window, features as of each event ---------------------
  const labels: Label[] = [];
  const byId = new Map<string, ScoredEvent>();
  let unlabelled = 0;
  for (const event of events) {
    const labelledAt = labelTimes.get(event.sourceId);
    const positive = labelledAt !== undefined && labelledAt - event.time <= model.label.windowMs;
    if (!positive && event.time + model.label.windowMs > newest) {
      unlabelled++; // the label may still come
      continue;
    }
    byId.set(event.eventId, event);
    labels.push({ label_id: event.eventId, entity_id: event.entity, label_time: event.time, label: positive ? 1 : 0 });
  }
  const requests = model.features.map(({ view, features }) => ({ view, version: options.versions.get(view.name) ?? 1, features }));
  const joined = pointInTimeJoin(rows, labels, requests).sort(
    (left, right) => left.label_time - right.label_time || (left.label_id < right.label_id ? -1 : 1),
  );
  const inputs = modelInputs(model);
  const featureInputs = inputs.slice(model.fields.length);

  // ---- outputs: rows in time order ----------------------------------------------------------
  const set: TrainingSet = {
    inputs,
    rows: [],
    categorical: model.categorical,
    categoryRows: [],
    labels: [],
    times: [],
    eventIds: [],
    ranges,
    featureVersions: Object.fromEntries(views.map((view) => [view.name, options.versions.get(view.name) ?? 1])),
    events: events.length,
    unlabelled,
  };
  for (const row of joined) {
    const event = byId.get(row.label_id);
    if (!event) continue;
    set.rows.push([...event.fields, ...featureInputs.map((name) => row.features[name] ?? null)]);
    set.categoryRows.push(event.categories);
    set.labels.push(row.label);
    set.times.push(row.label_time);
    set.eventIds.push(row.label_id);
  }
  return set;
}

/**
 * The feature rows a point-in-time join of the range's events may pick: those up to the range's end,
 * from its start minus the longest TTL (an older row is missing anyway), or all when a view has no TTL.
 */
function featureRange(views: readonly { readonly ttlMs: number | undefined }[], range: EventRange | undefined): EventRange {
  if (!range) return {};
  const from = range.eventTime?.from;
  const ttls = views.map((view) => view.ttlMs);
  const lookBack = ttls.every((ttl) => ttl !== undefined) ? Math.max(0, ...ttls) : undefined;
  const record = range.record;
  return {
    eventTime: {
      ...(from !== undefined && lookBack !== undefined ? { from: from - lookBack } : {}),
      ...(range.eventTime?.to !== undefined ? { to: range.eventTime.to } : {}),
    },
    ...(record
      ? {
          record: {
            ...(record.toTime !== undefined ? { toTime: record.toTime } : {}),
            ...(record.toOffsets !== undefined ? { toOffsets: record.toOffsets } : {}),
          },
        }
      : {}),
  };
}
