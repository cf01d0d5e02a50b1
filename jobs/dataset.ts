import type { Kafka } from 'kafkajs';
import { readRanges, resolveRanges, type PartitionRange } from '../kafka/topic-range.js';
import { replayFeatures } from './replay.js';
import { checkRetained, pinnedPlan, planRange, resolveToOffsets, type EventRange, type PinnedRanges } from './range.js';
import { pointInTimeJoin, type Label } from '../offline/point-in-time.js';
import { avroType, AvroSerde, readSchemaId } from '../schemas/index.js';
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
  readonly labels: number[];
  readonly times: number[];
  readonly eventIds: string[];
  /** The offsets read, per topic: the dataset's lineage. */
  readonly ranges: readonly { readonly topic: string; readonly partition: number; readonly start: string; readonly end: string }[];
  /** The same per topic, as a rebuild pins them (DatasetOptions.pinned). */
  readonly pinned: PinnedRanges;
  /** Registry ids of the writer schemas of the records read, per topic. */
  readonly schemaIds: Readonly<Record<string, readonly number[]>>;
  /** Which scored events of the ranges read were selected: event-time bounds, record bounds as offsets. */
  readonly selection: {
    readonly eventTimeFrom: number | null;
    readonly eventTimeTo: number | null;
    readonly offsets: readonly PartitionRange[];
  };
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
  /**
   * Offsets to read per topic, fixed beforehand (a run's manifest): the same records again, also
   * after the topics grew. The range's record bounds must then be offsets.
   */
  readonly pinned?: PinnedRanges;
  readonly onProgress?: (read: number, total: number) => void;
}

interface ScoredEvent {
  readonly eventId: string;
  readonly sourceId: string;
  readonly entity: string;
  readonly time: number;
  readonly fields: (number | null)[];
}

export async function buildTrainingSet(model: ModelDefinition, options: DatasetOptions): Promise<TrainingSet> {
  const ranges: TrainingSet['ranges'][number][] = [];
  const record = (topic: string, read: readonly PartitionRange[]): void => {
    for (const range of read) ranges.push({ topic, partition: range.partition, start: range.from.toString(), end: range.to.toString() });
  };
  const schemaIds: Record<string, Set<number>> = {};
  const noteSchema = (topic: string, value: Buffer): void => void (schemaIds[topic] ??= new Set()).add(readSchemaId(value));

  // ---- inputs: scored events, label events, and feature rows by replay ------------------------
  // Every offset is fixed here, once (or taken from `pinned`): the replay reads the very records
  // the events read saw, and the manifest says exactly which records those were.
  const eventsTopic = `${options.topicPrefix}events.${model.source.name}`;
  const labelTopic = `${options.topicPrefix}events.${model.label.source.name}`;
  const pinnedFor = (topic: string): readonly PartitionRange[] => {
    const pinned = options.pinned?.[topic];
    if (!pinned) throw new RangeError(`the pinned ranges name no offsets of ${topic}`);
    return pinned;
  };
  const { range, offsets: selectedOffsets } = options.pinned
    ? { range: options.range ?? {}, offsets: offsetBounds(options.range) }
    : await resolveToOffsets(options.kafka, eventsTopic, options.range);
  const plan = options.pinned
    ? await pinnedPlan(options.kafka, eventsTopic, pinnedFor(eventsTopic), range)
    : await planRange(options.kafka, eventsTopic, range);
  const labelRanges = options.pinned ? pinnedFor(labelTopic) : await resolveRanges(options.kafka, labelTopic);
  if (options.pinned) await checkRetained(options.kafka, labelTopic, labelRanges);
  const pinned: PinnedRanges = { ...options.pinned, [eventsTopic]: plan.read, [labelTopic]: labelRanges };

  const eventSerde = new AvroSerde(options.registryUrl, avroType(model.source.eventsSchema));
  const events: ScoredEvent[] = [];
  let newest = Number.NEGATIVE_INFINITY;
  await readRanges(options.kafka, eventsTopic, plan.read, async (partition, message) => {
    if (!message.value) return;
    const value = (await eventSerde.decode(message.value)) as Record<string, unknown>;
    noteSchema(eventsTopic, message.value);
    const time = Number(value.event_time);
    newest = Math.max(newest, time);
    if (!plan.selects(partition, BigInt(message.offset), time)) return;
    events.push({
      eventId: String(value.event_id),
      sourceId: String(value[model.source.idField]),
      entity: String(value[model.source.entityField]),
      time,
      fields: model.fields.map((field) => (typeof value[field] === 'number' ? value[field] : null)),
    });
  });
  record(eventsTopic, plan.read);

  const labelSerde = new AvroSerde(options.registryUrl, avroType(model.label.source.eventsSchema));
  const labelTimes = new Map<string, number>();
  await readRanges(options.kafka, labelTopic, labelRanges, async (_partition, message) => {
    if (!message.value) return;
    const value = (await labelSerde.decode(message.value)) as Record<string, unknown>;
    noteSchema(labelTopic, message.value);
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
    range: featureRange(views, range),
    pinned,
    onRows: (batch) => void rows.push(...batch),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  for (const [topic, read] of Object.entries(report.ranges)) if (topic !== eventsTopic) record(topic, read);
  for (const [topic, ids] of Object.entries(report.schemaIds)) for (const id of ids) (schemaIds[topic] ??= new Set()).add(id);

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
    labels: [],
    times: [],
    eventIds: [],
    ranges,
    pinned: { ...pinned, ...report.ranges },
    schemaIds: Object.fromEntries(Object.entries(schemaIds).map(([topic, ids]) => [topic, [...ids].sort((left, right) => left - right)])),
    selection: { eventTimeFrom: range.eventTime?.from ?? null, eventTimeTo: range.eventTime?.to ?? null, offsets: selectedOffsets },
    featureVersions: Object.fromEntries(views.map((view) => [view.name, options.versions.get(view.name) ?? 1])),
    events: events.length,
    unlabelled,
  };
  for (const row of joined) {
    const event = byId.get(row.label_id);
    if (!event) continue;
    set.rows.push([...event.fields, ...featureInputs.map((name) => row.features[name] ?? null)]);
    set.labels.push(row.label);
    set.times.push(row.label_time);
    set.eventIds.push(row.label_id);
  }
  return set;
}

/** Record bounds given as offsets, as ranges (a pinned range's selection). */
function offsetBounds(range: EventRange | undefined): PartitionRange[] {
  const bounds = range?.record;
  if (!bounds?.fromOffsets && !bounds?.toOffsets) return [];
  const partitions = [...new Set([...Object.keys(bounds.fromOffsets ?? {}), ...Object.keys(bounds.toOffsets ?? {})].map(Number))].sort(
    (a, b) => a - b,
  );
  return partitions.map((partition) => ({
    partition,
    from: BigInt(bounds.fromOffsets?.[partition] ?? 0),
    to: BigInt(bounds.toOffsets?.[partition] ?? Number.MAX_SAFE_INTEGER),
  }));
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
