import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import type { Logger } from 'pino';
import { ShadowComparison, type ScoredEvent, type ShadowWindow } from '../models/shadow-compare.js';
import type { DeploymentRecord } from '../models/rollout.js';
import { changeRollout, RolloutError, startRollout, type RolloutRegistry } from '../models/rollout-registry.js';
import { errorMessage } from '../common/errors.js';
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
  /** Wall-clock time after which a partition without records of the rollout stops holding windows (default 30 s). */
  readonly idleMs?: number;
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
  // passed it: the pipeline's tasks run at their own pace, and pairs arrive by topic. A partition
  // that has carried nothing of this rollout for `idleMs` of wall-clock time (no traffic there, or
  // an instance that could not load the shadow) no longer holds windows open.
  const partitions = [...starts.values()].reduce((sum, offsets) => sum + offsets.length, 0);
  const idleMs = options.idleMs ?? 30_000;
  const latest = new Map<string, number>();
  const seenAt = new Map<string, number>();
  let firstSeenAt: number | undefined;
  const watermarkOf = (now = Date.now()): number => {
    // Until every partition has spoken, or idleMs has passed since the first record of the rollout.
    if (latest.size < partitions && (firstSeenAt === undefined || now - firstSeenAt < idleMs)) return Number.NEGATIVE_INFINITY;
    const active = [...latest].filter(([key]) => now - (seenAt.get(key) ?? 0) < idleMs).map(([, time]) => time);
    if (active.length > 0) return Math.min(...active);
    return latest.size > 0 ? Math.max(...latest.values()) : Number.NEGATIVE_INFINITY;
  };
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
  const stop = (): void => finish();
  options.signal?.addEventListener('abort', stop, { once: true });
  if (options.signal?.aborted) finish();
  // Batches and the idle tick take turns: windows close in order, once each.
  let turn = Promise.resolve();
  const advance = (work: () => Promise<void>): Promise<void> => {
    turn = turn.then(work).catch((error: unknown) => fail(error));
    return turn;
  };
  const closeDue = async (): Promise<void> => {
    const watermark = watermarkOf();
    await publish(comparison.close(watermark));
    if (firstEventTime !== undefined && watermark - firstEventTime >= options.durationMs) finish();
  };
  let ended = false;
  const tick = setInterval(() => void advance(closeDue), 1_000);
  try {
    await producer.connect();
    await consumer.connect();
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) fail(payload.error);
    });
    await consumer.subscribe({ topics: [championTopic, shadowTopic] });
    await consumer.run({
      // Offsets are committed: a rejoin goes on from where it was, not from the topics' ends.
      eachBatch: async ({ batch }) => {
        if (ended) return;
        await advance(async () => {
          for (const message of batch.messages) await handle(batch.topic, batch.partition, message);
          await closeDue();
        });
      },
    });
    for (const [topic, offsets] of starts) for (const { partition, offset } of offsets) consumer.seek({ topic, partition, offset });
    await done;
    ended = true;
    clearInterval(tick);
    await consumer.stop();
    await turn;
    await publish(comparison.flush());
  } catch (error) {
    // Whatever stopped the run, the shadow does not go on scoring everything twice: best effort.
    await changeRollout(options.registry, record, {
      action: 'ABORT',
      state: 'ABORTED',
      share: 0,
      actor: options.actor,
      reason: `the shadow run failed: ${errorMessage(error)}`,
    }).catch(() => undefined);
    throw error;
  } finally {
    clearInterval(tick);
    options.signal?.removeEventListener('abort', stop);
    await consumer.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
  }
  const pairs = windows.reduce((sum, window) => sum + window.pairs, 0);
  const agreement = windows.reduce((sum, window) => sum + (window.decision_agreement ?? 0) * window.pairs, 0) / Math.max(1, pairs);
  const summary = `${pairs} pairs in ${windows.length} windows, decisions agreed on ${(agreement * 100).toFixed(2)}%${comparison.late > 0 ? `, ${comparison.late} predictions too late for their window` : ''}`;
  try {
    record = await changeRollout(options.registry, record, {
      action: 'ABORT',
      state: 'ABORTED',
      share: 0,
      actor: options.actor,
      reason: `shadow ended${options.signal?.aborted ? ' (stopped)' : ''}: ${summary}`,
      ...(Number.isFinite(watermarkOf()) ? { eventTime: watermarkOf() } : {}),
    });
    options.onRecord?.(record);
  } catch (error) {
    // Another change ended the rollout first (a promotion, an abort): the comparison still stands.
    if (!(error instanceof RolloutError)) throw error;
    options.logger.warn({ err: error, model: options.model }, `the shadow had already ended: ${summary}`);
  }
  return { final: record, windows, pairs, late: comparison.late };

  async function handle(topic: string, partition: number, message: KafkaMessage): Promise<void> {
    if (!message.value) return;
    const prediction = (await serde.decode(message.value)) as DecodedPrediction;
    if (prediction.deployment_id !== record.deployment_id) return;
    const key = `${topic}:${partition}`;
    latest.set(key, Math.max(latest.get(key) ?? Number.NEGATIVE_INFINITY, prediction.event_time));
    const now = Date.now();
    seenAt.set(key, now);
    firstSeenAt ??= now;
    firstEventTime ??= prediction.event_time;
    comparison.add(topic === shadowTopic ? 'shadow' : 'champion', prediction);
  }
}
