import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import type { Logger } from 'pino';
import { ShadowComparison, type ScoredEvent, type ShadowWindow } from '../models/shadow-compare.js';
import type { DeploymentRecord } from '../models/rollout.js';
import { changeRollout, startRollout, type RolloutRegistry } from '../models/rollout-registry.js';
import { AvroSerde } from '../schemas/index.js';

/**
 * A shadow run: starts the rollout (one START record; every inference instance then scores each
 * event with the shadow version too, into predictions.<model>.shadow, in the champion's
 * transaction), follows both prediction topics from where they ended before the start, and writes
 * one comparison record per window of event time to monitoring.shadow (the sink puts them in
 * ClickHouse). It ends, with one ABORT record, once the predictions read cover `durationMs` of
 * event time, or when stopped; the champion decides throughout.
 */
export interface ShadowOptions {
  readonly kafka: Kafka;
  readonly registryUrl: string;
  readonly topicPrefix: string;
  readonly registry: RolloutRegistry;
  /** monitoring.shadow: where comparison records go. */
  readonly comparisons: { readonly topic: string; readonly schemaId: number };
  readonly model: string;
  readonly candidate: number;
  readonly windowMs: number;
  /** How long (event time of the predictions) the shadow runs; Infinity: until stopped. */
  readonly durationMs: number;
  readonly actor: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  readonly onRecord?: (record: DeploymentRecord) => void;
  readonly onWindow?: (window: ShadowWindow) => void;
}

export interface ShadowOutcome {
  readonly final: DeploymentRecord;
  readonly windows: readonly ShadowWindow[];
  readonly pairs: number;
  /** Predictions that came for a window already reported (counted, in no record). */
  readonly late: number;
}

interface DecodedPrediction extends ScoredEvent {
  readonly deployment_id: string | null;
  readonly deployment: string;
}

export async function runShadow(options: ShadowOptions): Promise<ShadowOutcome> {
  const prefix = options.topicPrefix;
  const championTopic = `${prefix}predictions.${options.model}`;
  const shadowTopic = `${prefix}predictions.${options.model}.shadow`;

  // ---- inputs: both topics from their ends before the start (every pair is scored after it) ----
  const admin: Admin = options.kafka.admin();
  await admin.connect();
  const starts = new Map<string, { partition: number; offset: string }[]>();
  try {
    for (const topic of [championTopic, shadowTopic])
      starts.set(
        topic,
        (await admin.fetchTopicOffsets(topic)).map(({ partition, offset }) => ({ partition, offset })),
      );
  } finally {
    await admin.disconnect();
  }
  let record = await startRollout(options.registry, {
    model: options.model,
    strategy: 'SHADOW',
    candidate: options.candidate,
    share: 0,
    actor: options.actor,
    reason: `shadow of version ${options.candidate}`,
  });
  options.onRecord?.(record);
  options.logger.info({ model: options.model, deployment: record.deployment_id }, 'shadow started');

  // ---- transformation: pair by event id, report per window ------------------------------------
  const comparison = new ShadowComparison({
    model: options.model,
    deploymentId: record.deployment_id,
    championVersion: record.champion_version,
    shadowVersion: options.candidate,
    windowMs: options.windowMs,
    graceMs: Math.min(options.windowMs, 60_000),
  });
  const windows: ShadowWindow[] = [];
  // Each partition's latest event time (of both topics); a window closes when every partition has
  // passed it: the pipeline's tasks run at their own pace, and pairs arrive by topic. (A partition
  // that carries nothing holds windows open until the run ends, when every window is reported.)
  const partitions = [...starts.values()].reduce((sum, offsets) => sum + offsets.length, 0);
  const latest = new Map<string, number>();
  const watermarkOf = (): number => (latest.size < partitions ? Number.NEGATIVE_INFINITY : Math.min(...latest.values()));
  let firstEventTime: number | undefined;
  const serde = new AvroSerde(options.registryUrl);

  // ---- outputs: comparison records (keyed by model; ClickHouse folds a repeat by its key) --------
  const producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  const publish = async (reports: readonly ShadowWindow[]): Promise<void> => {
    if (reports.length === 0) return;
    await producer.send({
      topic: options.comparisons.topic,
      acks: -1,
      messages: await Promise.all(
        reports.map(async (report) => ({ key: options.model, value: await serde.encode(options.comparisons.schemaId, report) })),
      ),
    });
    for (const report of reports) {
      windows.push(report);
      options.onWindow?.(report);
    }
  };

  const consumer: Consumer = options.kafka.consumer({
    groupId: `${prefix}sluice-shadow-${record.deployment_id}`,
    maxWaitTimeInMs: 200,
    readUncommitted: false,
  });
  let finish!: () => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  options.signal?.addEventListener('abort', () => finish(), { once: true });
  let ended = false;
  try {
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topics: [championTopic, shadowTopic] });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (ended) return;
        try {
          for (const message of batch.messages) await handle(batch.topic, batch.partition, message);
          const watermark = watermarkOf();
          await publish(comparison.close(watermark));
          if (firstEventTime !== undefined && watermark - firstEventTime >= options.durationMs) finish();
        } catch (error) {
          fail(error);
        }
      },
    });
    for (const [topic, offsets] of starts) for (const { partition, offset } of offsets) consumer.seek({ topic, partition, offset });
    await done;
    ended = true;
    await consumer.stop();
    await publish(comparison.flush());
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }
  const pairs = windows.reduce((sum, window) => sum + window.pairs, 0);
  const agreement = windows.reduce((sum, window) => sum + (window.decision_agreement ?? 0) * window.pairs, 0) / Math.max(1, pairs);
  record = await changeRollout(options.registry, record, {
    action: 'ABORT',
    state: 'ABORTED',
    share: 0,
    actor: options.actor,
    reason: `shadow ended${options.signal?.aborted ? ' (stopped)' : ''}: ${pairs} pairs in ${windows.length} windows, decisions agreed on ${(agreement * 100).toFixed(2)}%${comparison.late > 0 ? `, ${comparison.late} predictions too late for their window` : ''}`,
    ...(Number.isFinite(watermarkOf()) ? { eventTime: watermarkOf() } : {}),
  });
  options.onRecord?.(record);
  return { final: record, windows, pairs, late: comparison.late };

  async function handle(topic: string, partition: number, message: KafkaMessage): Promise<void> {
    if (!message.value) return;
    const prediction = (await serde.decode(message.value)) as DecodedPrediction;
    if (prediction.deployment_id !== record.deployment_id) return;
    const key = `${topic}:${partition}`;
    latest.set(key, Math.max(latest.get(key) ?? Number.NEGATIVE_INFINITY, prediction.event_time));
    firstEventTime ??= prediction.event_time;
    comparison.add(topic === shadowTopic ? 'shadow' : 'champion', prediction);
  }
}
