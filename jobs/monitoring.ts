import kafkajs, { type Kafka } from 'kafkajs';
import { readRanges, resolveRanges } from '../kafka/index.js';
import {
  DriftMerger,
  DriftPartition,
  MemoryStore,
  OutcomeRouter,
  PerformanceMerger,
  PerformancePartition,
  type DriftPartial,
  type DriftRecord,
  type DriftSummary,
  type Outcome,
  type PartitionProgress,
  type PerformancePartial,
  type PerformanceRecord,
} from '../monitoring/index.js';
import { avroType, AvroSerde, loadAvsc } from '../schemas/index.js';
import { blockSizeOf, predictionInput, type ModelCatalogApi } from '../streams/monitoring/index.js';
import type { ModelDefinition } from '../topology/models.js';
import type { MonitoringSettings } from '../topology/monitoring.js';

const { Partitioners } = kafkajs;

/**
 * Replay of the monitoring stages: drift and performance records recomputed from
 * predictions.<model> and the label topics with the stages' own code (monitoring/), state in
 * memory. Each input partition is read from its start in offset order, as the stage read it, and
 * its partials are merged in the same order, so the records are equal to the live ones: a range
 * only selects which windows are returned (by their start, in event time). `sluice backfill`
 * writes them to the offline store; `sluice monitoring check` compares them with what the stages
 * wrote (PROVISIONAL performance records and the late counters depend on how fast labels arrived
 * relative to predictions, so only FINAL records are compared, late counters aside).
 */
export interface MonitoringReplayOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  readonly models: readonly ModelDefinition[];
  readonly settings: MonitoringSettings;
  readonly catalog: ModelCatalogApi;
  /** Partitions of the performance stage's outcomes topic (the live stage's). */
  readonly outcomePartitions: number;
  /** Windows starting in [from, to) (event time). */
  readonly from?: number;
  readonly to?: number;
  /** The router's mark slot (the stage's: 1 min). */
  readonly markEveryMs?: number;
  readonly onProgress?: (read: number) => void;
}

export interface MonitoringReplay {
  readonly drift: DriftRecord[];
  readonly performance: PerformanceRecord[];
  /** Records read from the topics. */
  readonly read: number;
}

export async function replayMonitoring(options: MonitoringReplayOptions): Promise<MonitoringReplay> {
  const { kafka, topicPrefix, settings, catalog } = options;
  const from = options.from ?? Number.NEGATIVE_INFINITY;
  const to = options.to ?? Number.POSITIVE_INFINITY;
  const inRange = (start: number): boolean => start >= from && start < to;
  const predictionsSerde = new AvroSerde(options.registryUrl, avroType(loadAvsc('predictions')));
  let read = 0;
  const drift: DriftRecord[] = [];
  const performance: PerformanceRecord[] = [];

  for (const model of options.models) {
    // ---- inputs: every partition of predictions.<model>, in offset order ------------------------
    const topic = `${topicPrefix}predictions.${model.name}`;
    const ranges = await resolveRanges(kafka, topic);
    const partitions = ranges.length;
    const byPartition = new Map<number, { value: Record<string, unknown> }[]>();
    await readRanges(kafka, topic, ranges, async (partition, message) => {
      if (!message.value) return;
      read++;
      options.onProgress?.(read);
      const list = byPartition.get(partition) ?? [];
      list.push({ value: (await predictionsSerde.decode(message.value)) as Record<string, unknown> });
      byPartition.set(partition, list);
    });

    // ---- drift: each partition's partials, merged as the merger did ---------------------------
    const merger = new DriftMerger(
      {
        settings,
        lastN: settings.lastN,
        reference: (name, version) => catalog.reference(name, version),
        layout: (name, version) => catalog.layout(name, version),
      },
      new MemoryStore<DriftSummary>(),
      new MemoryStore(),
    );
    for (let partition = 0; partition < partitions; partition++) {
      const processor = new DriftPartition(
        {
          model: model.name,
          partition,
          partitions,
          windowMs: settings.windowMs,
          graceMs: settings.graceMs,
          blocks: blockSizeOf(settings, partitions),
          layout: (version) => catalog.layout(model.name, version),
        },
        new MemoryStore<DriftSummary>(),
        new MemoryStore<PartitionProgress>(),
      );
      const partials: DriftPartial[] = [];
      for (const { value } of byPartition.get(partition) ?? []) partials.push(...(await processor.add(predictionInput(value))));
      for (const partial of partials) drift.push(...(await merger.add(partial)).filter((record) => inRange(record.window_start)));
    }

    // ---- performance: routed as the router did, joined per outcomes partition -----------------
    const outcomes = new Map<number, { predictions: Outcome[]; labels: Outcome[] }>();
    const partitioner = Partitioners.DefaultPartitioner();
    const metadata = Array.from({ length: options.outcomePartitions }, (_, partitionId) => ({
      partitionId,
      partitionErrorCode: 0,
      leader: 0,
      replicas: [0],
      isr: [0],
    }));
    const outcomePartition = (key: string): number =>
      partitioner({ topic: 'outcomes', partitionMetadata: metadata, message: { key, value: null } });
    const collect = (
      stream: 'predictions' | 'labels',
      routed: readonly { key: string; partition: number | undefined; outcome: Outcome }[],
    ): void => {
      for (const entry of routed) {
        const partition = entry.partition ?? outcomePartition(entry.key);
        const lists = outcomes.get(partition) ?? { predictions: [], labels: [] };
        lists[stream].push(entry.outcome);
        outcomes.set(partition, lists);
      }
    };
    const markEveryMs = options.markEveryMs ?? 60_000;
    for (let partition = 0; partition < partitions; partition++) {
      const router = new OutcomeRouter(
        { stream: 'prediction', source: partition, outcomePartitions: options.outcomePartitions, markEveryMs },
        new MemoryStore<number>(),
      );
      for (const { value } of byPartition.get(partition) ?? [])
        collect(
          'predictions',
          await router.route(model.name, {
            type: 'prediction',
            model: model.name,
            version: Number(value.model_version),
            id: String(value.event_id),
            time: Number(value.event_time),
            score: Number(value.score),
            decision: value.decision === true,
            source: partition,
          }),
        );
    }
    byPartition.clear();
    const labelTopic = `${topicPrefix}events.${model.label.source.name}`;
    const labelRanges = await resolveRanges(kafka, labelTopic);
    const labelSerde = new AvroSerde(options.registryUrl, avroType(model.label.source.eventsSchema));
    const routers = new Map<number, OutcomeRouter>();
    const labelsByPartition = new Map<number, Outcome[]>();
    await readRanges(kafka, labelTopic, labelRanges, async (partition, message) => {
      if (!message.value) return;
      read++;
      const value = (await labelSerde.decode(message.value)) as Record<string, unknown>;
      const list = labelsByPartition.get(partition) ?? [];
      list.push({
        type: 'label',
        model: model.name,
        id: `${model.source.name}:${String(value[model.label.joinField])}`,
        time: Number(value.event_time),
        source: partition,
      });
      labelsByPartition.set(partition, list);
    });
    for (const [partition, labels] of [...labelsByPartition].sort(([left], [right]) => left - right)) {
      const router =
        routers.get(partition) ??
        new OutcomeRouter(
          { stream: 'label', source: partition, outcomePartitions: options.outcomePartitions, markEveryMs },
          new MemoryStore<number>(),
        );
      routers.set(partition, router);
      for (const label of labels) collect('labels', await router.route(model.name, label as Outcome & { id: string }));
    }
    const perfMerger = new PerformanceMerger(
      {
        shape: { scoreBins: settings.scoreBins, calibrationBins: settings.calibrationBins },
        labelWindowMs: () => model.label.windowMs,
        training: async (name, version) => {
          const registered = await catalog.version(name, version);
          return registered ? { metrics: registered.metrics, threshold: model.threshold } : undefined;
        },
      },
      new MemoryStore(),
    );
    const models = new Map([
      [model.name, { labelWindowMs: model.label.windowMs, predictionPartitions: partitions, labelPartitions: labelRanges.length }],
    ]);
    for (const [partition, lists] of [...outcomes].sort(([left], [right]) => left - right)) {
      const join = new PerformancePartition(
        {
          partition,
          partitions: options.outcomePartitions,
          windowMs: settings.windowMs,
          graceMs: settings.graceMs,
          shape: { scoreBins: settings.scoreBins, calibrationBins: settings.calibrationBins },
          models,
        },
        new MemoryStore(),
      );
      const partials: PerformancePartial[] = [];
      // Predictions and labels interleaved by time (any interleaving decides the same; this one keeps the state small).
      let p = 0;
      let l = 0;
      while (p < lists.predictions.length || l < lists.labels.length) {
        const prediction = lists.predictions[p];
        const label = lists.labels[l];
        const next = label === undefined || (prediction !== undefined && prediction.time <= label.time) ? prediction : label;
        if (next === prediction) p++;
        else l++;
        if (next) partials.push(...(await join.add(next)));
      }
      for (const partial of partials) performance.push(...(await perfMerger.add(partial)).filter((record) => inRange(record.window_start)));
    }
  }
  return { drift, performance, read };
}

/** The identity of a drift record: which window of which version, which input. */
export function driftKey(
  record: Pick<DriftRecord, 'model_name' | 'model_version' | 'window_kind' | 'window_start' | 'window_end' | 'last_n_round' | 'feature'>,
): string {
  return [
    record.model_name,
    record.model_version,
    record.window_kind,
    record.window_kind === 'LAST_N' ? `tick ${record.last_n_round ?? ''}` : record.window_start,
    record.window_end,
    record.feature,
  ].join('|');
}

export function performanceKey(record: Pick<PerformanceRecord, 'model_name' | 'model_version' | 'stage' | 'window_start'>): string {
  return [record.model_name, record.model_version, record.stage, record.window_start].join('|');
}

export interface MonitoringConsistency {
  readonly kind: 'drift' | 'performance';
  readonly compared: number;
  readonly mismatched: number;
  readonly onlyLive: number;
  readonly onlyReplay: number;
  readonly duplicatesLive: number;
  readonly mismatchRate: number;
  readonly examples: readonly { readonly key: string; readonly live: unknown; readonly replay: unknown }[];
}

/**
 * The consistency check of monitoring: the records the stages wrote (monitoring.drift, the FINAL
 * records of monitoring.performance) against the replay's, for the windows starting in the range.
 * Every field is compared exactly (floats to the last bit), except performance's late counters.
 * Windows the live stages have not evaluated yet (the newest ones) are not counted as missing.
 */
export async function checkMonitoring(options: MonitoringReplayOptions): Promise<MonitoringConsistency[]> {
  const from = options.from ?? Number.NEGATIVE_INFINITY;
  const to = options.to ?? Number.POSITIVE_INFINITY;
  const names = new Set(options.models.map((model) => model.name));
  const read = async <T>(topic: string, contract: string, keep: (record: T) => boolean): Promise<T[]> => {
    const serde = new AvroSerde(options.registryUrl, avroType(loadAvsc(contract)));
    const records: T[] = [];
    await readRanges(options.kafka, topic, await resolveRanges(options.kafka, topic), async (_partition, message) => {
      if (!message.value) return;
      const record = (await serde.decode(message.value)) as T;
      if (keep(record)) records.push(record);
    });
    return records;
  };
  const liveDrift = await read<DriftRecord>(
    `${options.topicPrefix}monitoring.drift`,
    'monitoring.drift',
    (record) => names.has(record.model_name) && record.window_start >= from && record.window_start < to,
  );
  const livePerformance = await read<PerformanceRecord>(
    `${options.topicPrefix}monitoring.performance`,
    'monitoring.performance',
    (record) => names.has(record.model_name) && record.stage === 'FINAL' && record.window_start >= from && record.window_start < to,
  );
  const replay = await replayMonitoring(options);
  const lastLive = (records: readonly { window_end: number }[]): number =>
    Math.max(Number.NEGATIVE_INFINITY, ...records.map((record) => record.window_end));
  const driftFields = fieldsOf('monitoring.drift');
  const performanceFields = fieldsOf('monitoring.performance');
  return [
    compare('drift', liveDrift, replay.drift, driftKey, (record) => canonical(record, driftFields), lastLive(liveDrift)),
    compare(
      'performance',
      livePerformance,
      replay.performance.filter((record) => record.stage === 'FINAL'),
      performanceKey,
      (record) => canonical({ ...record, late_labels: 0, late_predictions: 0 }, performanceFields),
      lastLive(livePerformance),
    ),
  ];
}

function fieldsOf(contract: string): string[] {
  return (loadAvsc(contract) as { fields: { name: string }[] }).fields.map((field) => field.name);
}

/** A record's fields in the contract's order (Avro-decoded and in-memory records compare equal). */
function canonical(record: object, fields: readonly string[]): unknown[] {
  const values = record as Record<string, unknown>;
  return fields.map((field) => values[field] ?? null);
}

function compare<T extends { window_end: number }>(
  kind: 'drift' | 'performance',
  live: readonly T[],
  replayed: readonly T[],
  keyOf: (record: T) => string,
  comparable: (record: T) => unknown,
  liveUntil: number,
): MonitoringConsistency {
  const liveByKey = new Map<string, T>();
  let duplicatesLive = 0;
  for (const record of live) {
    const key = keyOf(record);
    if (liveByKey.has(key)) duplicatesLive++;
    liveByKey.set(key, record);
  }
  const replayByKey = new Map(replayed.map((record) => [keyOf(record), record]));
  let compared = 0;
  let mismatched = 0;
  let onlyReplay = 0;
  const examples: { key: string; live: unknown; replay: unknown }[] = [];
  for (const [key, record] of replayByKey) {
    const served = liveByKey.get(key);
    if (!served) {
      // Not evaluated live yet (the stage is behind, or the window is the newest): not a mismatch.
      if (record.window_end <= liveUntil) onlyReplay++;
      continue;
    }
    compared++;
    const left = JSON.stringify(comparable(served));
    const right = JSON.stringify(comparable(record));
    if (left !== right) {
      mismatched++;
      if (examples.length < 5) examples.push({ key, live: JSON.parse(left) as unknown, replay: JSON.parse(right) as unknown });
    }
  }
  const onlyLive = [...liveByKey.keys()].filter((key) => !replayByKey.has(key)).length;
  const seen = compared + onlyLive + onlyReplay + duplicatesLive;
  return {
    kind,
    compared,
    mismatched,
    onlyLive,
    onlyReplay,
    duplicatesLive,
    mismatchRate: seen === 0 ? 0 : (mismatched + onlyLive + onlyReplay + duplicatesLive) / seen,
    examples,
  };
}
