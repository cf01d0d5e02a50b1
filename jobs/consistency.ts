import type { Kafka } from 'kafkajs';
import { avroType, AvroSerde, loadAvsc } from '../schemas/index.js';
import type { FeatureRow } from '../streams/features/engine.js';
import type { FeatureView } from '../topology/features.js';
import { replayFeatures } from './replay.js';
import { readRanges, resolveRanges } from '../kafka/topic-range.js';
import { hasRecordBounds, type EventRange } from './range.js';

/**
 * The online/offline consistency check: the rows the features stage served (features.<view>, the
 * values the online store held at each event's time) against the rows a replay recomputes from
 * events.<source> for the same events. Any difference is skew; the mismatch rate must be 0.
 *
 * Like is compared with like: a range selects events (event time by default, see EventRange); the
 * replay recomputes the rows of exactly those events (over their entities' full history), and only
 * the served rows of the same events count — by their event time, or, for record-time and offset
 * ranges, by (entity, event) among those the replay selected. Served rows are looked for in all of
 * features.<view>, since the stage wrote them when it processed the event, not at its event time
 * (the topic keeps 30 days: older served rows cannot be compared).
 */
export interface ViewConsistency {
  readonly view: string;
  readonly version: number;
  /** (entity, event) pairs found in both. */
  readonly compared: number;
  /** Pairs in both with different values or windows. */
  readonly mismatched: number;
  readonly onlyLive: number;
  readonly onlyReplay: number;
  /** (mismatched + onlyLive + onlyReplay) / pairs seen. */
  readonly mismatchRate: number;
  readonly examples: readonly { readonly entity: string; readonly eventId: string; readonly live: unknown; readonly replay: unknown }[];
}

export interface ConsistencyOptions {
  readonly kafka: Kafka;
  readonly topicPrefix: string;
  readonly registryUrl: string;
  readonly views: readonly FeatureView[];
  readonly versions: ReadonlyMap<string, number>;
  /** The events whose rows are checked (default: all). */
  readonly range?: EventRange;
  readonly onProgress?: (read: number, total: number) => void;
}

const pairKey = (entity: string, eventId: string): string => `${entity}\u0000${eventId}`;

function comparable(row: { windowStart: number; windowEnd: number; eventTime: number; values: unknown }): string {
  return JSON.stringify([row.eventTime, row.windowStart, row.windowEnd, row.values]);
}

export async function checkConsistency(options: ConsistencyOptions): Promise<ViewConsistency[]> {
  // ---- inputs: what was served live ---------------------------------------------------------
  const serde = new AvroSerde(options.registryUrl, avroType(loadAvsc('features')));
  const live = new Map<string, Map<string, string>>();
  for (const view of options.views) {
    const rows = new Map<string, string>();
    live.set(view.name, rows);
    const topic = `${options.topicPrefix}features.${view.name}`;
    const from = options.range?.eventTime?.from ?? Number.NEGATIVE_INFINITY;
    const to = options.range?.eventTime?.to ?? Number.POSITIVE_INFINITY;
    await readRanges(options.kafka, topic, await resolveRanges(options.kafka, topic), async (_partition, message) => {
      if (!message.value) return;
      const vector = (await serde.decode(message.value)) as Record<string, unknown>;
      if (vector.view_version !== options.versions.get(view.name)) return;
      // Rows of events outside the range's event time cannot be compared: not kept (memory).
      const eventTime = Number(vector.event_time);
      if (eventTime < from || eventTime >= to) return;
      rows.set(
        pairKey(String(vector.entity_id), String(vector.event_id)),
        comparable({
          eventTime: Number(vector.event_time),
          windowStart: Number(vector.window_start),
          windowEnd: Number(vector.window_end),
          values: vector.values,
        }),
      );
    });
  }

  // ---- transformation: recompute by replay and compare -------------------------------------
  const replayed = new Map<string, Map<string, FeatureRow>>(options.views.map((view) => [view.name, new Map()]));
  /** Per source, the (entity, event) pairs in the range: the only served rows that count. */
  const selected = new Map<string, Set<string>>();
  await replayFeatures({
    kafka: options.kafka,
    topicPrefix: options.topicPrefix,
    registryUrl: options.registryUrl,
    views: options.views,
    versions: options.versions,
    ...(options.range ? { range: options.range } : {}),
    onRows: (rows) => {
      for (const row of rows) replayed.get(row.view)?.set(pairKey(row.entity, row.eventId), row);
    },
    onSelected: (source, entity, eventId) => {
      let pairs = selected.get(source);
      if (!pairs) selected.set(source, (pairs = new Set()));
      pairs.add(pairKey(entity, eventId));
    },
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });

  // ---- outputs: a report per view ----------------------------------------------------------
  return options.views.map((view) => {
    // Served rows already hold only the range's event times; with record-time or offset bounds, only
    // those of the events the replay selected count.
    const served = live.get(view.name) ?? new Map<string, string>();
    const inRange = selected.get(view.source.name) ?? new Set<string>();
    const liveRows = hasRecordBounds(options.range) ? new Map([...served].filter(([key]) => inRange.has(key))) : served;
    const replayRows = replayed.get(view.name) ?? new Map<string, FeatureRow>();
    let compared = 0;
    let mismatched = 0;
    let onlyReplay = 0;
    const examples: ViewConsistency['examples'][number][] = [];
    for (const [key, row] of replayRows) {
      const served = liveRows.get(key);
      if (served === undefined) {
        onlyReplay++;
        continue;
      }
      compared++;
      const recomputed = comparable({ ...row, values: row.values });
      if (served !== recomputed) {
        mismatched++;
        if (examples.length < 5)
          examples.push({
            entity: row.entity,
            eventId: row.eventId,
            live: JSON.parse(served) as unknown,
            replay: JSON.parse(recomputed) as unknown,
          });
      }
    }
    const onlyLive = [...liveRows.keys()].filter((key) => !replayRows.has(key)).length;
    const seen = compared + onlyLive + onlyReplay;
    return {
      view: view.name,
      version: options.versions.get(view.name) ?? 0,
      compared,
      mismatched,
      onlyLive,
      onlyReplay,
      mismatchRate: seen === 0 ? 0 : (mismatched + onlyLive + onlyReplay) / seen,
      examples,
    };
  });
}
