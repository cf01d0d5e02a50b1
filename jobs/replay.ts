import type { Kafka } from 'kafkajs';
import { avroType, AvroSerde, readSchemaId } from '../schemas/index.js';
import { emptyEntityState, SourceFeatures, type EntityState, type FeatureRow, type SourceEvent } from '../streams/features/engine.js';
import type { FeatureView } from '../topology/features.js';
import { readRanges, type PartitionRange } from '../kafka/topic-range.js';
import { pinnedPlan, planRange, type EventRange, type PinnedRanges } from './range.js';
import { headersOf, sequenceOf } from '../streams/runtime/index.js';
import { isValidEntity } from '../streams/features/entity-history.js';

/**
 * Replay of feature views: reads events.<source> and runs it through the same SourceFeatures code
 * as the live stage, with state in memory — the live online store is never touched. Each
 * partition is read from its start in offset order, as the live stage read it, so every entity's
 * state is warmed up from its history before the range; rows are emitted only for the events in
 * the range (`EventRange`: event time by default).
 */
export interface ReplayOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  readonly views: readonly FeatureView[];
  readonly versions: ReadonlyMap<string, number>;
  /** The events whose rows are emitted (default: all). */
  readonly range?: EventRange;
  /** Offsets to read per topic, fixed beforehand (a training set's manifest); else resolved now. */
  readonly pinned?: PinnedRanges;
  /** Called with each batch of rows in order per entity (e.g. to write them to the offline store). */
  readonly onRows: (rows: readonly FeatureRow[]) => Promise<void> | void;
  /** Called for every event in the range, whether it produced rows or came too late for every view. */
  readonly onSelected?: (source: string, entity: string, eventId: string) => void;
  /** Progress: records read so far of the total the ranges hold. */
  readonly onProgress?: (read: number, total: number) => void;
}

export interface ReplayReport {
  /** Records read (the range's events and the history before them). */
  readonly events: number;
  /** Events in the range. */
  readonly selected: number;
  readonly rows: number;
  /** Events in the range that came too late for at least one view. */
  readonly lateEvents: number;
  readonly seconds: number;
  /** The offsets read, per source topic: the dataset's lineage. */
  readonly ranges: Readonly<Record<string, readonly PartitionRange[]>>;
  /** Registry ids of the writer schemas of the records read, per topic. */
  readonly schemaIds: Readonly<Record<string, readonly number[]>>;
}

/**
 * The replay of one source's events in partition order, as plain code: folds every event into its
 * entity's state and returns rows for the selected ones. Events older than `skipBefore` (the
 * range's start minus the views' retention) are skipped: they cannot be in any window of a row in
 * the range, and an event that old is late for every view once the range's first event is in.
 */
export class RangeReplay {
  private readonly states = new Map<string, EntityState>();
  private readonly skipBefore: number;

  constructor(
    readonly features: SourceFeatures,
    fromEventTime: number = Number.NEGATIVE_INFINITY,
  ) {
    this.skipBefore = fromEventTime - features.retentionMs;
  }

  /** Applies one event; the rows it produces when it is selected, else none. */
  apply(event: SourceEvent, selected: boolean): { readonly rows: readonly FeatureRow[]; readonly late: boolean } {
    if (!selected && event.eventTime < this.skipBefore) return { rows: [], late: false };
    let state = this.states.get(event.entity);
    if (!state) {
      state = emptyEntityState();
      this.states.set(event.entity, state);
    }
    const result = this.features.apply(state, event);
    return selected ? { rows: result.rows, late: result.late.length > 0 } : { rows: [], late: false };
  }
}

/**
 * The event's entity id when the live features stage computes rows for it; undefined for the
 * events it dead-letters (no id, an empty one, or one starting with NUL), which replay skips too.
 */
export function replayedEntity(value: Readonly<Record<string, unknown>>, entityField: string): string | undefined {
  const entity = value[entityField];
  return typeof entity === 'string' && isValidEntity(entity) ? entity : undefined;
}

export async function replayFeatures(options: ReplayOptions): Promise<ReplayReport> {
  const started = performance.now();
  const sources = new Map<string, FeatureView[]>();
  for (const view of options.views) sources.set(view.source.name, [...(sources.get(view.source.name) ?? []), view]);

  // ---- inputs: every source topic from its start to the end of the range ---------------------
  const plans = [];
  for (const [sourceName, views] of sources) {
    const [first] = views;
    if (!first) continue;
    const topic = `${options.topicPrefix}events.${sourceName}`;
    const pinned = options.pinned?.[topic];
    plans.push({
      topic,
      features: new SourceFeatures(first.source, views, options.versions),
      plan: pinned ? await pinnedPlan(options.kafka, topic, pinned, options.range) : await planRange(options.kafka, topic, options.range),
    });
  }
  const total = plans.reduce((sum, { plan }) => sum + plan.read.reduce((inner, range) => inner + Number(range.to - range.from), 0), 0);

  // ---- transformation: the live code over in-memory state ---------------------------------
  let read = 0;
  let selected = 0;
  let rowsOut = 0;
  let lateEvents = 0;
  let lastProgress = 0;
  const schemaIds: Record<string, Set<number>> = {};
  for (const { topic, features, plan } of plans) {
    const ids = (schemaIds[topic] ??= new Set());
    const serde = new AvroSerde(options.registryUrl, avroType(features.source.eventsSchema));
    const replay = new RangeReplay(features, plan.fromEventTime);
    let pending: FeatureRow[] = [];
    await readRanges(options.kafka, topic, plan.read, async (partition, message) => {
      read++;
      if (message.value) {
        const value = (await serde.decode(message.value)) as Record<string, unknown>;
        ids.add(readSchemaId(message.value));
        const entity = replayedEntity(value, features.source.entityField);
        if (entity !== undefined) {
          const eventTime = typeof value.event_time === 'number' ? value.event_time : Number(message.timestamp);
          const inRange = plan.selects(partition, BigInt(message.offset), eventTime);
          const eventId = String(value.event_id);
          // The arrival order live processing used: the fused pipeline's stamp, else the offset.
          const sequence = sequenceOf({ offset: message.offset, headers: headersOf(message.headers) });
          const result = replay.apply({ entity, eventId, eventTime, sequence, value }, inRange);
          if (inRange) {
            selected++;
            options.onSelected?.(features.source.name, entity, eventId);
            if (result.late) lateEvents++;
            pending.push(...result.rows);
          }
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
    selected,
    rows: rowsOut,
    lateEvents,
    seconds: (performance.now() - started) / 1000,
    ranges: Object.fromEntries(plans.map(({ topic, plan }) => [topic, plan.read])),
    schemaIds: Object.fromEntries(Object.entries(schemaIds).map(([topic, ids]) => [topic, [...ids].sort((left, right) => left - right)])),
  };
}
