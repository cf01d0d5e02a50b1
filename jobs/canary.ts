import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { Arm, evaluateGates, gatesRecord, type GateConfig, type GateVerdict } from '../models/gates.js';
import { entityBucket, type DeploymentRecord } from '../models/rollout.js';
import { changeRollout, startRollout, type RolloutRegistry } from '../models/rollout-registry.js';
import type { RegistryMessage } from '../models/registry-transaction.js';
import { AvroSerde } from '../schemas/index.js';
import type { ModelDefinition } from '../topology/index.js';

/**
 * A canary run: starts the rollout (one START record), then follows the model's predictions and
 * its labels and evaluates the gates after every fetched batch. The share steps up when a step
 * has lasted `stepEveryMs` of event time and the gates pass; a failing gate rolls back at once
 * (one registry record, the candidate's share to 0) and raises an alert; passing the last step
 * promotes the candidate (the champion alias and the record in one transaction). Labels join by
 * the model's label definition: a label event naming a scored event makes it positive; a scored
 * event without one once event time is past its label window is negative.
 */
export interface CanaryOptions {
  readonly kafka: Kafka;
  readonly registryUrl: string;
  readonly topicPrefix: string;
  readonly registry: RolloutRegistry;
  /** monitoring.alerts, where a rollback raises its alert (in the rollback's transaction). */
  readonly alerts?: { readonly topic: string; readonly schemaId: number };
  readonly model: ModelDefinition;
  readonly candidate: number;
  /** Shares of entities for the canary, in order, each in (0, 1]; the last is usually 1. */
  readonly steps: readonly number[];
  readonly stepEveryMs: number;
  readonly gates: GateConfig;
  readonly actor: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  /** Called with every record the run writes (START, STEP, PROMOTE, ROLLBACK). */
  readonly onRecord?: (record: DeploymentRecord) => void;
}

export interface CanaryOutcome {
  readonly final: DeploymentRecord;
  readonly verdict: GateVerdict;
  readonly champion: Arm;
  readonly canary: Arm;
  /** Labelled outcomes (both arms) when the verdict was reached. */
  readonly labelled: number;
}

interface Pending {
  readonly arm: Arm;
  readonly score: number;
  readonly eventTime: number;
}

interface DecodedPrediction {
  readonly event_id: string;
  readonly entity_id: string;
  readonly deployment: string;
  readonly deployment_id: string | null;
  readonly score: number;
  readonly latency_ms: number;
  readonly event_time: number;
}

export async function runCanary(options: CanaryOptions): Promise<CanaryOutcome> {
  const { model, gates } = options;
  if (
    options.steps.length === 0 ||
    options.steps.some((share, index) => !(share > 0 && share <= 1) || share < (options.steps[index - 1] ?? 0))
  )
    throw new RangeError(`canary steps must be rising shares in (0, 1], got ${options.steps.join(', ')}`);
  let record = await startRollout(options.registry, {
    model: model.name,
    strategy: 'CANARY',
    candidate: options.candidate,
    share: options.steps[0] ?? 0,
    steps: options.steps,
    stepEveryMs: options.stepEveryMs,
    gates: gatesRecord(gates),
    actor: options.actor,
    reason: `canary of version ${options.candidate}`,
  });
  options.onRecord?.(record);
  options.logger.info({ model: model.name, deployment: record.deployment_id, share: record.candidate_share }, 'canary started');

  const champion = new Arm();
  const canary = new Arm();
  const pending = new Map<string, Pending>();
  const labels = new Set<string>();
  let watermark = Number.NEGATIVE_INFINITY;
  let stepStart: number | undefined;
  let labelled = 0;
  let verdict: GateVerdict = evaluateGates(champion, canary, gates);
  const serde = new AvroSerde(options.registryUrl);
  const predictionsTopic = `${options.topicPrefix}predictions.${model.name}`;
  const labelsTopic = `${options.topicPrefix}events.${model.label.source.name}`;

  const settle = (eventId: string, positive: boolean): void => {
    const scored = pending.get(eventId);
    if (!scored) return;
    pending.delete(eventId);
    scored.arm.labelledOutcome(scored.score, positive);
    labelled += 1;
  };
  const onPrediction = (prediction: DecodedPrediction): void => {
    if (prediction.deployment_id !== record.deployment_id) return;
    // A fallback's arm is the one the hash split routed it to (its own version is the champion's).
    const arm =
      prediction.deployment === 'CANARY' ||
      (prediction.deployment === 'FALLBACK' && entityBucket(record.deployment_id, prediction.entity_id) < record.candidate_share)
        ? canary
        : champion;
    const fallback = prediction.deployment === 'FALLBACK';
    arm.predicted(prediction.score, prediction.latency_ms, fallback);
    watermark = Math.max(watermark, prediction.event_time);
    stepStart ??= prediction.event_time;
    if (fallback) return;
    pending.set(prediction.event_id, { arm, score: prediction.score, eventTime: prediction.event_time });
    if (labels.has(prediction.event_id)) settle(prediction.event_id, true);
  };
  const onLabel = (value: Record<string, unknown>): void => {
    const eventId = value[model.label.joinField];
    if (typeof eventId !== 'string') return;
    labels.add(eventId);
    settle(eventId, true);
  };
  const expireUnlabelled = (): void => {
    for (const [eventId, scored] of pending) if (scored.eventTime + model.label.windowMs < watermark) settle(eventId, false);
  };

  const write = async (change: Parameters<typeof changeRollout>[2]): Promise<void> => {
    record = await changeRollout(options.registry, record, change);
    options.onRecord?.(record);
    options.logger.info(
      { model: model.name, deployment: record.deployment_id, action: record.action, reason: record.reason },
      'canary changed',
    );
  };
  const alert = (message: string, value: number, threshold: number): RegistryMessage[] =>
    options.alerts
      ? [
          {
            topic: options.alerts.topic,
            key: model.name,
            schemaId: options.alerts.schemaId,
            value: {
              alert_id: randomUUID(),
              rule: 'canary_gate',
              state: 'FIRING',
              severity: 'CRITICAL',
              model_name: model.name,
              feature: null,
              value,
              threshold,
              message,
              at: Date.now(),
            },
          },
        ]
      : [];

  /** After each batch: roll back on a failing gate, step or promote when the step has lasted and the gates pass. */
  const decide = async (): Promise<boolean> => {
    expireUnlabelled();
    verdict = evaluateGates(champion, canary, gates);
    const eventTime = Number.isFinite(watermark) ? watermark : undefined;
    if (verdict.verdict === 'fail') {
      const failed = verdict.readings.filter((reading) => reading.failed === true);
      const reason = `gates failed: ${failed.map((reading) => `${reading.gate} ${reading.value.toFixed(4)} > ${reading.limit}`).join('; ')} (${labelled} labelled)`;
      await write({
        action: 'ROLLBACK',
        state: 'ROLLED_BACK',
        share: 0,
        actor: 'gates',
        reason,
        ...(eventTime === undefined ? {} : { eventTime }),
        extra: alert(
          `${model.name} canary of version ${options.candidate} rolled back: ${reason}`,
          failed[0]?.value ?? 0,
          failed[0]?.limit ?? 0,
        ),
      });
      return true;
    }
    if (verdict.verdict !== 'pass' || stepStart === undefined || watermark - stepStart < options.stepEveryMs) return false;
    const next = record.step_index + 1;
    if (next >= options.steps.length) {
      await write({
        action: 'PROMOTE',
        state: 'PROMOTED',
        share: 0,
        champion: options.candidate,
        actor: 'gates',
        reason: `every step passed its gates (${labelled} labelled)`,
        ...(eventTime === undefined ? {} : { eventTime }),
      });
      return true;
    }
    await write({
      action: 'STEP',
      state: 'RUNNING',
      share: options.steps[next] ?? 1,
      stepIndex: next,
      actor: 'gates',
      reason: `step ${record.step_index} lasted ${Math.round((watermark - stepStart) / 1000)} s of event time and passed its gates`,
      ...(eventTime === undefined ? {} : { eventTime }),
    });
    stepStart = watermark;
    return false;
  };

  const consumer: Consumer = options.kafka.consumer({
    groupId: `sluice-canary-${record.deployment_id}`,
    maxWaitTimeInMs: 200,
    readUncommitted: false,
  });
  let finish!: () => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const abort = (): void => fail(new Error('the canary run was stopped before a verdict; the rollout stays as it is'));
  options.signal?.addEventListener('abort', abort, { once: true });
  let decided = false;
  // Read through a function: `judge` changes it across awaits, which narrowing cannot see.
  const over = (): boolean => decided;
  let deciding = Promise.resolve();
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [predictionsTopic, labelsTopic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (decided) return;
        const judge = async (): Promise<void> => {
          deciding = deciding.then(async () => {
            if (decided) return;
            decided = await decide();
            if (decided) finish();
          });
          await deciding.catch((error: unknown) => fail(error));
        };
        for (const message of batch.messages) {
          await handle(batch.topic, message);
          // A step is judged when its event time has passed, not when the batch ends: a batch
          // that spans hours of event time (a canary catching up) still steps at the right time.
          if (stepStart !== undefined && watermark - stepStart >= options.stepEveryMs) await judge();
          if (over()) return;
        }
        await judge();
      },
    });
    await done;
  } finally {
    options.signal?.removeEventListener('abort', abort);
    await consumer.disconnect().catch(() => undefined);
  }
  return { final: record, verdict, champion, canary, labelled };

  async function handle(topic: string, message: KafkaMessage): Promise<void> {
    if (!message.value) return;
    const value = (await serde.decode(message.value)) as Record<string, unknown>;
    if (topic === predictionsTopic) onPrediction(value as unknown as DecodedPrediction);
    else onLabel(value);
  }
}
