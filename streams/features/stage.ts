import type avro from 'avsc';
import { stageMetrics } from '../runtime/metrics.js';
import { childSpan } from '../../common/tracing.js';
import { settleAll } from '../../common/settle.js';
import { type MetricsRegistry } from '../../common/metrics.js';
import { avroType, type AvroSerde } from '../../schemas/index.js';
import { NOT_LOADED, type KeyValueStore } from '../../state/index.js';
import { EVENT_FEATURES, type EventFeatures, type FeatureView } from '../../topology/features.js';
import {
  ValidationError,
  type OutputRecord,
  type RawRecord,
  type StageDefinition,
  type StreamRecord,
  type TaskContext,
} from '../runtime/index.js';
import { SourceFeatures, type FeatureRow, type SourceEvent } from './engine.js';
import { appendInOrder, keepWindows, keptBytes } from './entity-append.js';
import { isValidEntity, loadEntity, loadEntityNow, saveEntity, type LoadedEntity, type StoredEntity } from './entity-history.js';
import { entityStoreSerde } from './entity-state-serde.js';
import { watchDistinctTables } from './metrics.js';

/**
 * The features stage: events.<source> → every feature view of that source, computed per entity
 * over its recent history in a RocksDB store (restored from its changelog, written in the same
 * transaction as the outputs) → features.<view>. The same store holds each entity's latest row per
 * view, which the online store serves.
 */
export interface FeaturesStageOptions {
  readonly views: readonly FeatureView[];
  /** The registered version of each view (registry.features). */
  readonly versions: ReadonlyMap<string, number>;
  readonly topicPrefix: string;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  /** Registered schema id of each features.<view> value. */
  readonly schemaIds: Readonly<Record<string, number>>;
  readonly metrics: MetricsRegistry;
  /** Write `features.<view>` rows (default); false computes state and the event's features for the next stages only. */
  readonly emitRows?: boolean;
  /** The stage's name (default `features`); a second copy in another pipeline needs its own. */
  readonly name?: string;
}

type Value = Record<string, unknown>;

/** The late views of an event that was on time for every view (shared: the next stages only read it). */
const NONE_LATE: ReadonlySet<string> = new Set();

/** The store of entity histories and latest rows, one per input partition (entity-history.ts). */
export const ENTITY_STORE = 'entities';

export function featuresStage(options: FeaturesStageOptions): StageDefinition<Value> {
  const metrics = stageMetrics(options.metrics);
  watchDistinctTables(options.metrics);
  const stage = options.name ?? 'features';
  const bySourceTopic = new Map<string, { features: SourceFeatures; serde: AvroSerde; rowSchemaIds: readonly number[] }>();
  for (const view of options.views) {
    if (view.entity !== view.source.entityField) {
      throw new Error(
        `view ${view.name} is keyed by ${view.entity}, but events.${view.source.name} is partitioned by ${view.source.entityField}; re-keying is not supported`,
      );
    }
  }
  for (const sourceName of new Set(options.views.map((view) => view.source.name))) {
    const views = options.views.filter((view) => view.source.name === sourceName);
    const [first] = views;
    if (!first) continue;
    bySourceTopic.set(`${options.topicPrefix}events.${sourceName}`, {
      features: new SourceFeatures(first.source, views, options.versions),
      serde: options.serdeFor(avroType(first.source.eventsSchema)),
      rowSchemaIds: views.map((view) => options.schemaIds[view.name] ?? 0),
    });
  }
  const encoder = options.serdeFor();
  const rowTopics = new Map(options.views.map((view) => [view.name, `${options.topicPrefix}features.${view.name}`]));

  const sourceOf = (topic: string): { features: SourceFeatures; serde: AvroSerde; rowSchemaIds: readonly number[] } => {
    const found = bySourceTopic.get(topic);
    if (!found) throw new Error(`features does not read ${topic}`);
    return found;
  };

  // ---- inputs ------------------------------------------------------------------------------

  // A record whose schemas and entity are in memory (the common case: a chunk's prefetch loads its
  // entities) is taken without a promise; the others wait for the registry or RocksDB.
  const decode = (raw: RawRecord): Value | Promise<Value> => {
    if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'an events record without a value');
    return sourceOf(raw.topic).serde.decodeNow(raw.value) as Value | Promise<Value>;
  };

  const eventTime = (value: Value, raw: RawRecord): number => (typeof value.event_time === 'number' ? value.event_time : raw.timestamp);

  // ---- transformation ----------------------------------------------------------------------

  const process = (record: StreamRecord<Value>, context: TaskContext): OutputRecord[] | Promise<OutputRecord[]> => {
    const { features, rowSchemaIds } = sourceOf(record.topic);
    const entity = record.value[features.source.entityField];
    if (typeof entity !== 'string' || entity === '')
      throw new ValidationError('MISSING', features.source.entityField, 'the event has no entity id');
    if (!isValidEntity(entity))
      throw new ValidationError('INVALID', features.source.entityField, 'an entity id must not start with a NUL character');
    // The rows' writer schemas are loaded before the entity's state changes (in place): a registry
    // outage then fails the record with nothing changed, and its retry computes the same rows.
    if (options.emitRows !== false && !encoder.isPrepared(rowSchemaIds))
      return encoder.prepare(rowSchemaIds).then(() => process(record, context));
    const store = context.store<KeyValueStore<StoredEntity>>(ENTITY_STORE);
    const event: SourceEvent = {
      entity,
      eventId: String(record.value.event_id),
      eventTime: record.eventTime,
      sequence: record.sequence,
      value: record.value,
    };
    // An event newer than every other of its entity, whose windows are kept: without the history.
    const appended = appendInOrder(store, entity, features, event);
    if (appended instanceof Promise)
      return appended.then((done) => (done ? emit(record, entity, done.rows, []) : computeFor(record, features, entity, store, event)));
    return appended ? emit(record, entity, appended.rows, []) : computeFor(record, features, entity, store, event);
  };

  /** The general path: the entity's whole history, for any event (late, tied, or the first after a read-back). */
  const computeFor = (
    record: StreamRecord<Value>,
    features: SourceFeatures,
    entity: string,
    store: KeyValueStore<StoredEntity>,
    event: SourceEvent,
  ): OutputRecord[] | Promise<OutputRecord[]> => {
    // One "state read" span: from memory at once, or (NOT_LOADED) from RocksDB, ending when read.
    const loaded = childSpan(
      'state read',
      (): LoadedEntity | Promise<LoadedEntity> => {
        const inMemory = loadEntityNow(store, entity);
        return inMemory === NOT_LOADED ? loadEntity(store, entity) : inMemory;
      },
      { 'sluice.store': ENTITY_STORE },
    );
    const computed = (read: LoadedEntity): OutputRecord[] | Promise<OutputRecord[]> => {
      const result = features.apply(read.state, event);
      if (result.duplicate || !result.inserted) return [];
      const saved = saveEntity(store, entity, read, result.inserted);
      keepWindows(features, saved, read.state.events);
      return emit(record, entity, result.rows, result.late);
    };
    return loaded instanceof Promise ? loaded.then(computed) : computed(loaded);
  };

  // ---- outputs: one row per view ----------------------------------------------------------

  /** The event's rows, for the stages after this one in the task and (unless `emitRows` is false) as features.<view> records. */
  const emit = (
    record: StreamRecord<Value>,
    entity: string,
    rows: readonly FeatureRow[],
    late: readonly string[],
  ): OutputRecord[] | Promise<OutputRecord[]> => {
    for (const view of late) metrics.lateRecords.inc({ stage, topic: `features.${view}`, policy: 'drop' });
    const computed: EventFeatures = { rows, late: late.length === 0 ? NONE_LATE : new Set(late) };
    record.scratch.set(EVENT_FEATURES, computed);

    if (options.emitRows === false) return [];
    const values: (Buffer | Promise<Buffer>)[] = [];
    for (const row of rows) values.push(encoder.encodeNow(options.schemaIds[row.view] ?? 0, featureVector(row)));
    const encoded = settleAll(values);
    // Encoding waits only where avsc refused a value (the client then builds the error).
    return encoded instanceof Promise ? encoded.then((done) => outputsOf(entity, rows, done)) : outputsOf(entity, rows, encoded);
  };

  /** The rows as features.<view> records, with their encoded values (in the rows' order). */
  const outputsOf = (entity: string, rows: readonly FeatureRow[], values: readonly Buffer[]): OutputRecord[] => {
    const outputs: OutputRecord[] = [];
    for (let index = 0; index < rows.length; index++) {
      const row = rows[index] as FeatureRow;
      outputs.push({
        topic: rowTopics.get(row.view) ?? `${options.topicPrefix}features.${row.view}`,
        key: entity,
        value: values[index] as Buffer,
        headers: { 'sluice.event_id': row.eventId, 'sluice.view_version': String(row.version) },
      });
    }
    return outputs;
  };

  return {
    name: stage,
    inputs: [...bySourceTopic.keys()],
    decode,
    eventTime,
    process,
    // The entities of a chunk are read from RocksDB in one call before it is processed.
    prefetch: (record) => {
      const entity = record.value[sourceOf(record.topic).features.source.entityField];
      return typeof entity === 'string' ? [{ store: ENTITY_STORE, key: entity }] : [];
    },
    stores: [{ name: ENTITY_STORE, kind: 'key-value', serde: entityStoreSerde(), heldBeside: keptBytes }],
  };
}

/** A row as the FeatureVector Avro record of features.<view>. */
export function featureVector(row: FeatureRow): Record<string, unknown> {
  return {
    view: row.view,
    view_version: row.version,
    entity_id: row.entity,
    event_id: row.eventId,
    event_time: row.eventTime,
    event_sequence: row.sequence,
    window_start: row.windowStart,
    window_end: row.windowEnd,
    values: row.values,
  };
}
