import type avro from 'avsc';
import { stageMetrics } from '../runtime/metrics.js';
import { type MetricsRegistry } from '../../common/metrics.js';
import { settleAll } from '../../common/settle.js';
import { checkQuality, type QualityCheck } from './quality.js';
import { avroType, decodeAvroOrJsonNow, loadAvsc, SchemaViolationError, type AvroSerde } from '../../schemas/index.js';
import { DeserializationError } from '../../schemas/errors.js';
import { int64Serde, NOT_LOADED, type WindowStore } from '../../state/index.js';
import type { SourceDefinition } from '../../topology/sources.js';
import {
  ValidationError,
  WindowedAggregator,
  tumbling,
  type OutputRecord,
  type RawRecord,
  type StageDefinition,
  type StreamRecord,
  type TaskContext,
} from '../runtime/index.js';

/**
 * The ingest stage: raw.<source> (Avro in the Confluent wire format, or JSON checked against
 * the source's schema) → data-quality checks → event id and event time → duplicates dropped by
 * event id (RocksDB, restored from its changelog) → events.<source>. Bad records go to the
 * dead-letter topic with their reason; quality
 * problems are counted per source, field and check, in metrics and in monitoring.quality reports
 * per one-minute window of event time.
 */
export interface IngestOptions {
  readonly sources: readonly SourceDefinition[];
  readonly topicPrefix: string;
  /** Reads raw values; its registry also knows the output schemas. */
  readonly serdeFor: (reader: avro.Type) => AvroSerde;
  /** Registered ids of the events.<source> values and of monitoring.quality. */
  readonly schemaIds: { readonly events: Readonly<Record<string, number>>; readonly quality: number };
  readonly metrics: MetricsRegistry;
  readonly qualityWindowMs?: number;
  readonly now?: () => number;
}

type Value = Record<string, unknown>;

interface SourceRuntime {
  readonly source: SourceDefinition;
  readonly serde: AvroSerde;
  readonly rawType: avro.Type;
  readonly eventsTopic: string;
  /** The schemas of what a record of the source becomes: its events topic's and the quality reports'. */
  readonly outputSchemas: readonly number[];
}

interface PartitionState {
  /** Counts per `field|check` (and `|RECORDS`) per window of event time. */
  readonly quality: WindowedAggregator<number, number>;
}

const RECORDS = '|RECORDS';
const EVENT_IDS = 'event-ids';

export function ingestStage(options: IngestOptions): StageDefinition<Value> {
  const now = options.now ?? Date.now;
  const metrics = stageMetrics(options.metrics);
  const stage = 'ingest';
  const qualityTopic = `${options.topicPrefix}monitoring.quality`;
  const qualityWindowMs = options.qualityWindowMs ?? 60_000;
  const bySourceTopic = new Map<string, SourceRuntime>();
  for (const source of options.sources) {
    const rawType = avroType(source.rawSchema);
    bySourceTopic.set(`${options.topicPrefix}raw.${source.name}`, {
      source,
      rawType,
      serde: options.serdeFor(rawType),
      eventsTopic: `${options.topicPrefix}events.${source.name}`,
      outputSchemas: [options.schemaIds.events[source.name] ?? 0, options.schemaIds.quality],
    });
  }
  const encoder = options.serdeFor(avroType(loadAvsc('monitoring.quality')));
  const partitions = new Map<string, PartitionState>();

  const sourceOf = (topic: string): SourceRuntime => {
    const runtime = bySourceTopic.get(topic);
    if (!runtime) throw new Error(`ingest does not read ${topic}`);
    return runtime;
  };

  const stateOf = (topic: string, partition: number): PartitionState => {
    const id = `${topic}:${partition}`;
    let state = partitions.get(id);
    if (!state) {
      state = {
        quality: new WindowedAggregator({
          window: tumbling(qualityWindowMs),
          aggregation: { init: () => 0, add: (count, add: number) => count + add },
        }),
      };
      partitions.set(id, state);
    }
    return state;
  };

  const countProblem = (raw: RawRecord, eventTime: number, field: string | null, check: QualityCheck): void => {
    const { source } = sourceOf(raw.topic);
    metrics.qualityViolations.inc({ stage, source: source.name, field: field ?? '', check });
    stateOf(raw.topic, raw.partition).quality.add(`${field ?? ''}|${check}`, eventTime, 1, Number.NEGATIVE_INFINITY);
  };

  const countRecord = (raw: RawRecord, eventTime: number): void => {
    stateOf(raw.topic, raw.partition).quality.add(RECORDS, eventTime, 1, Number.NEGATIVE_INFINITY);
  };

  // ---- inputs ------------------------------------------------------------------------------

  // A record is taken without a promise where none is needed (JSON, or Avro of a loaded writer
  // schema, and an event id the chunk's prefetch read); the others wait for the registry or RocksDB.
  const decode = (raw: RawRecord): Value | Promise<Value> => {
    const runtime = sourceOf(raw.topic);
    try {
      const decoded = decodeAvroOrJsonNow(raw.value, runtime.serde, runtime.rawType);
      return decoded instanceof Promise ? decoded.catch((error: unknown) => countUndecodable(raw, error)) : decoded;
    } catch (error) {
      return countUndecodable(raw, error);
    }
  };

  /** Counts a record that does not decode (a retriable failure is not the record's fault) and throws its error on. */
  const countUndecodable = (raw: RawRecord, error: unknown): never => {
    if (error instanceof DeserializationError && !error.retriable) {
      countRecord(raw, raw.timestamp);
      if (error instanceof SchemaViolationError) {
        for (const violation of error.violations) countProblem(raw, raw.timestamp, violation.field, 'SCHEMA_VIOLATION');
      } else {
        countProblem(raw, raw.timestamp, null, 'UNDECODABLE');
      }
    }
    throw error;
  };

  const eventTime = (value: Value, raw: RawRecord): number => {
    const time = value[sourceOf(raw.topic).source.eventTimeField];
    return typeof time === 'number' && Number.isFinite(time) ? time : raw.timestamp;
  };

  // ---- transformation ----------------------------------------------------------------------

  const process = (record: StreamRecord<Value>, context: TaskContext): OutputRecord[] | Promise<OutputRecord[]> => {
    const { source, outputSchemas } = sourceOf(record.topic);
    // The output schemas are loaded before anything is counted or remembered: a registry outage
    // then fails the record with nothing changed (its retry is not taken for a duplicate, and the
    // quality windows it closes are not lost).
    if (!encoder.isPrepared(outputSchemas)) return encoder.prepare(outputSchemas).then(() => process(record, context));
    const ingestTime = now();
    countRecord(record.raw, record.eventTime);

    const violations = checkQuality(source, record.value, ingestTime);
    if (violations.length > 0) {
      for (const violation of violations) countProblem(record.raw, record.eventTime, violation.field, violation.check);
      const [first] = violations;
      throw new ValidationError(
        first?.check ?? 'OTHER',
        first?.field ?? undefined,
        violations.map((violation) => violation.message).join('; '),
      );
    }

    const eventId = `${source.name}:${String(record.value[source.idField])}`;
    // Seen ids live in a RocksDB window store by event time: a re-sent event (same id, same
    // time) is found by a point lookup, and ids older than the TTL drop out by segment.
    const seenIds = context.store<WindowStore<number>>(EVENT_IDS);
    const eventTime = Math.max(0, Math.floor(record.eventTime));
    const seen = seenIds.peek(eventId, eventTime);
    if (seen === NOT_LOADED)
      return seenIds.get(eventId, eventTime).then((found) => deduplicated(record, context, eventId, eventTime, ingestTime, found));
    return deduplicated(record, context, eventId, eventTime, ingestTime, seen);
  };

  const deduplicated = (
    record: StreamRecord<Value>,
    context: TaskContext,
    eventId: string,
    eventTime: number,
    ingestTime: number,
    seen: number | undefined,
  ): OutputRecord[] | Promise<OutputRecord[]> => {
    const { source, eventsTopic } = sourceOf(record.topic);
    if (seen !== undefined) {
      metrics.duplicates.inc({ stage, topic: record.topic });
      countProblem(record.raw, record.eventTime, source.idField, 'DUPLICATE');
      return withReports(record, context, []);
    }
    const event = { ...record.value, event_id: eventId, event_time: record.eventTime, ingest_time: ingestTime };
    const key = String(record.value[source.entityField]);
    const seenIds = context.store<WindowStore<number>>(EVENT_IDS);
    // Encoded before the id is remembered: a transient failure here is retried with nothing written.
    const emit = (value: Buffer): OutputRecord[] | Promise<OutputRecord[]> => {
      seenIds.put(eventId, eventTime, ingestTime);
      return withReports(record, context, [{ topic: eventsTopic, key, value, headers: { ...record.headers, 'sluice.event_id': eventId } }]);
    };
    const value = encoder.encodeNow(options.schemaIds.events[source.name] ?? 0, event);
    return value instanceof Promise ? value.then(emit) : emit(value);
  };

  // ---- outputs: quality reports of windows the watermark has closed ----------------------

  const withReports = (
    record: StreamRecord<Value>,
    context: TaskContext,
    outputs: OutputRecord[],
  ): OutputRecord[] | Promise<OutputRecord[]> => {
    const { source } = sourceOf(record.topic);
    const reports = qualityReports(source.name, stateOf(record.topic, record.partition).quality, context.watermark());
    if (reports.length === 0) return outputs;
    const values = settleAll(reports.map((report) => report.value));
    const withValues = (settled: readonly Buffer[]): OutputRecord[] => [
      ...outputs,
      ...reports.map((report, index) => ({ ...report, value: settled[index] as Buffer })),
    ];
    return values instanceof Promise ? values.then(withValues) : withValues(values);
  };

  const qualityReports = (
    sourceName: string,
    quality: WindowedAggregator<number, number>,
    watermark: number,
  ): (Omit<OutputRecord, 'value'> & { value: Buffer | Promise<Buffer> })[] => {
    const closed = quality.advance(watermark);
    if (closed.length === 0) return [];
    const recordsPerWindow = new Map(
      closed.filter((result) => result.key === RECORDS).map((result) => [result.window.start, result.value]),
    );
    const reports: (Omit<OutputRecord, 'value'> & { value: Buffer | Promise<Buffer> })[] = [];
    for (const result of closed) {
      if (result.key === RECORDS) continue;
      const separator = result.key.lastIndexOf('|');
      const field = result.key.slice(0, separator);
      const check = result.key.slice(separator + 1);
      const report = {
        source: sourceName,
        field: field === '' ? null : field,
        check,
        window_start: result.window.start,
        window_end: result.window.end,
        records: recordsPerWindow.get(result.window.start) ?? result.value,
        violations: result.value,
      };
      reports.push({ topic: qualityTopic, key: sourceName, value: encoder.encodeNow(options.schemaIds.quality, report) });
    }
    return reports;
  };

  return {
    name: stage,
    inputs: [...bySourceTopic.keys()],
    decode,
    eventTime,
    process,
    onPartitionReset: (topic, partition) => partitions.delete(`${topic}:${partition}`),
    // The event ids of a chunk are looked up in RocksDB in one call before it is processed.
    prefetch: (record) => {
      const { source } = sourceOf(record.topic);
      return [
        {
          store: EVENT_IDS,
          key: `${source.name}:${String(record.value[source.idField])}`,
          window: Math.max(0, Math.floor(record.eventTime)),
        },
      ];
    },
    stores: [
      { name: EVENT_IDS, kind: 'window', serde: int64Serde, retentionMs: Math.max(...options.sources.map((source) => source.dedupTtlMs)) },
    ],
  };
}
