import type { Kafka } from 'kafkajs';
import { avroType, AvroSerde } from '../schemas/index.js';
import { emptyEntityState, SourceFeatures, type EntityState, type FeatureRow } from '../streams/features/engine.js';
import type { FeatureView } from '../topology/features.js';
import { readRanges, resolveRanges, type PartitionRange, type RangeBounds } from '../kafka/topic-range.js';
import { headersOf, sequenceOf } from '../streams/runtime/index.js';

/**
 * Replay of feature views: reads events.<source> ranges and runs them through the same
 * SourceFeatures code as the live stage, with state in memory — the live online store is never
 * touched. For a time range, each entity's state is first warmed up from the events of the
 * views' retention before the range (rows are only emitted inside the range), so the first rows
 * of the range see the same windows as live did.
 */
export interface ReplayOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  readonly views: readonly FeatureView[];
  readonly versions: ReadonlyMap<string, number>;
  readonly bounds?: RangeBounds;
  /** Called with each batch of rows in order per entity (e.g. to write them to the offline store). */
  readonly onRows: (rows: readonly FeatureRow[]) => Promise<void> | void;
  /** Progress: records read so far of the total the ranges hold. */
  readonly onProgress?: (read: number, total: number) => void;
}

export interface ReplayReport {
  readonly events: number;
  readonly rows: number;
  readonly lateEvents: number;
  readonly seconds: number;
  /** The ranges replayed, per source topic: the dataset's lineage. */
  readonly ranges: Readonly<Record<string, readonly PartitionRange[]>>;
}

export async function replayFeatures(options: ReplayOptions): Promise<ReplayReport> {
  const started = performance.now();
  const sources = new Map<string, FeatureView[]>();
  for (const view of options.views) sources.set(view.source.name, [...(sources.get(view.source.name) ?? []), view]);

  // ---- inputs: the ranges of every source topic -------------------------------------------
  const plans: { topic: string; features: SourceFeatures; emitFrom: PartitionRange[]; readFrom: PartitionRange[] }[] = [];
  for (const [sourceName, views] of sources) {
    const [first] = views;
    if (!first) continue;
    const features = new SourceFeatures(first.source, views, options.versions);
    const topic = `${options.topicPrefix}events.${sourceName}`;
    const emitFrom = await resolveRanges(options.kafka, topic, options.bounds);
    const fromTime = options.bounds?.fromTime;
    // Warm-up: Kafka record times track event times closely; an hour of margin covers the skew.
    const readFrom =
      fromTime === undefined
        ? emitFrom
        : (
            await resolveRanges(options.kafka, topic, {
              ...options.bounds,
              fromTime: Math.max(0, fromTime - features.retentionMs - 3_600_000),
            })
          ).map((range) => ({ ...range, to: emitFrom.find((emit) => emit.partition === range.partition)?.to ?? range.to }));
    plans.push({ topic, features, emitFrom, readFrom });
  }
  const total = plans.reduce((sum, plan) => sum + plan.readFrom.reduce((inner, range) => inner + Number(range.to - range.from), 0), 0);

  // ---- transformation: the live code over in-memory state ---------------------------------
  let read = 0;
  let rowsOut = 0;
  let lateEvents = 0;
  let lastProgress = 0;
  for (const plan of plans) {
    const serde = new AvroSerde(options.registryUrl, avroType(plan.features.source.eventsSchema));
    const states = new Map<string, EntityState>();
    const emitStart = new Map(plan.emitFrom.map((range) => [range.partition, range.from]));
    let pending: FeatureRow[] = [];
    await readRanges(options.kafka, plan.topic, plan.readFrom, async (partition, message) => {
      read++;
      if (message.value) {
        const value = (await serde.decode(message.value)) as Record<string, unknown>;
        const entity = value[plan.features.source.entityField];
        if (typeof entity === 'string' && entity !== '') {
          let state = states.get(entity);
          if (!state) {
            state = emptyEntityState();
            states.set(entity, state);
          }
          const eventTime = typeof value.event_time === 'number' ? value.event_time : Number(message.timestamp);
          const result = plan.features.apply(state, {
            entity,
            eventId: String(value.event_id),
            eventTime,
            // The arrival order live processing used: the fused pipeline's stamp, else the offset.
            sequence: sequenceOf({ offset: message.offset, headers: headersOf(message.headers) }),
            value,
          });
          if (result.late.length > 0) lateEvents++;
          if (BigInt(message.offset) >= (emitStart.get(partition) ?? 0n)) pending.push(...result.rows);
        }
      }
      // ---- outputs: rows in batches, progress ------------------------------------------
      if (pending.length >= 10_000) {
        const batch = pending;
        pending = [];
        rowsOut += batch.length;
        await options.onRows(batch);
      }
      if (options.onProgress && (read - lastProgress >= 1_000 || read === total)) {
        lastProgress = read;
        options.onProgress(read, total);
      }
    });
    rowsOut += pending.length;
    if (pending.length > 0) await options.onRows(pending);
  }
  options.onProgress?.(read, total);
  return {
    events: read,
    rows: rowsOut,
    lateEvents,
    seconds: (performance.now() - started) / 1000,
    ranges: Object.fromEntries(plans.map((plan) => [plan.topic, plan.emitFrom])),
  };
}
