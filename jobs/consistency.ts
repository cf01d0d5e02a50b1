import type { Kafka } from 'kafkajs';
import { avroType, AvroSerde, loadAvsc } from '../schemas/index.js';
import type { FeatureRow } from '../streams/features/engine.js';
import type { FeatureView } from '../topology/features.js';
import { replayFeatures } from './replay.js';
import { readRanges, resolveRanges, type RangeBounds } from '../kafka/topic-range.js';

/**
 * The online/offline consistency check: the rows the features stage served (features.<view>, the
 * values the online store held at each event's time) against the rows a replay recomputes from
 * events.<source> for the same events. Any difference is skew; the mismatch rate must be 0.
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
  /** Which live rows to check (features.<view> record times); the replay covers their events. */
  readonly bounds?: RangeBounds;
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
    await readRanges(options.kafka, topic, await resolveRanges(options.kafka, topic, options.bounds), async (_partition, message) => {
      if (!message.value) return;
      const vector = (await serde.decode(message.value)) as Record<string, unknown>;
      if (vector.view_version !== options.versions.get(view.name)) return;
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
  await replayFeatures({
    kafka: options.kafka,
    topicPrefix: options.topicPrefix,
    registryUrl: options.registryUrl,
    views: options.views,
    versions: options.versions,
    onRows: (rows) => {
      for (const row of rows) replayed.get(row.view)?.set(pairKey(row.entity, row.eventId), row);
    },
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });

  // ---- outputs: a report per view ----------------------------------------------------------
  return options.views.map((view) => {
    const liveRows = live.get(view.name) ?? new Map<string, string>();
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
