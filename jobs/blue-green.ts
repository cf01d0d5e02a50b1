import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { isWatcherGroup } from '../models/deployment.js';
import { readDeployments, type DeploymentRecord } from '../models/rollout.js';
import { changeRollout, RolloutError, startRollout, type RolloutRegistry } from '../models/rollout-registry.js';
import { readRegistryTopic } from '../schemas/index.js';
import { errorMessage } from '../common/errors.js';

/**
 * Blue-green: one START record makes every serving instance load the new version beside the
 * champion and warm it (score the latest events' inputs); each reports to registry.readiness.
 * Once every live instance of the model (a member in its watcher group) has reported ready, one
 * SWITCH record moves all traffic at once (the champion alias in the same transaction). The old
 * version stays loaded: `switchBack` is one SWITCH_BACK record. A failed warm-up or a timeout
 * aborts, and the champion never stopped deciding.
 */
export interface BlueGreenOptions {
  readonly kafka: Kafka;
  readonly registryUrl: string;
  readonly topicPrefix: string;
  readonly registry: RolloutRegistry;
  readonly model: string;
  readonly candidate: number;
  readonly warmTimeoutMs: number;
  readonly actor: string;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
  readonly onRecord?: (record: DeploymentRecord) => void;
}

export interface Readiness {
  readonly deployment_id: string;
  readonly model_name: string;
  readonly version: number;
  readonly instance: string;
  readonly ready: boolean;
  readonly rows_checked: number;
  readonly error: string | null;
  readonly at: number;
}

export interface BlueGreenOutcome {
  readonly final: DeploymentRecord;
  /** The live instances and their reports when the switch (or the abort) was decided. */
  readonly instances: readonly Readiness[];
}

/** The model's live serving instances: its watcher groups with a member. */
export async function liveInstances(kafka: Kafka, prefix: string, model: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const groups = (await admin.listGroups()).groups.map((group) => group.groupId).filter((group) => isWatcherGroup(group, prefix, model));
    if (groups.length === 0) return [];
    const described = await admin.describeGroups(groups);
    return described.groups.filter((group) => group.members.length > 0).map((group) => group.groupId);
  } finally {
    await admin.disconnect();
  }
}

export async function runBlueGreen(options: BlueGreenOptions): Promise<BlueGreenOutcome> {
  const { model } = options;
  let record = await startRollout(options.registry, {
    model,
    strategy: 'BLUE_GREEN',
    candidate: options.candidate,
    share: 0,
    actor: options.actor,
    reason: `blue-green of version ${options.candidate}: loading and warming in every instance`,
  });
  options.onRecord?.(record);
  const change = async (next: Parameters<typeof changeRollout>[2]): Promise<DeploymentRecord> => {
    record = await changeRollout(options.registry, record, next);
    options.onRecord?.(record);
    return record;
  };
  try {
    return await waitAndSwitch();
  } catch (error) {
    // A failure while waiting leaves nothing half done: the candidate is unloaded everywhere (best effort).
    await changeRollout(options.registry, record, {
      action: 'ABORT',
      state: 'ABORTED',
      share: 0,
      actor: options.actor,
      reason: `the blue-green run failed: ${errorMessage(error)}`,
    }).catch(() => undefined);
    throw error;
  }

  async function waitAndSwitch(): Promise<BlueGreenOutcome> {
    const deadline = Date.now() + options.warmTimeoutMs;
    for (;;) {
      const live = await liveInstances(options.kafka, options.topicPrefix, model);
      const reports = [
        ...(
          await readRegistryTopic<Readiness>({
            kafka: options.kafka,
            topic: `${options.topicPrefix}registry.readiness`,
            registryUrl: options.registryUrl,
            contract: 'registry.readiness',
          })
        ).values(),
      ].filter((report) => report.deployment_id === record.deployment_id);
      const byInstance = new Map(reports.map((report) => [report.instance, report]));
      const instances = live.flatMap((instance) => byInstance.get(instance) ?? []);
      const failed = instances.find((report) => !report.ready);
      if (failed) {
        const final = await change({
          action: 'ABORT',
          state: 'ABORTED',
          share: 0,
          actor: options.actor,
          reason: `version ${options.candidate} failed to warm in ${failed.instance}: ${failed.error ?? 'not ready'}`,
        });
        return { final, instances };
      }
      if (live.length > 0 && instances.length === live.length) {
        const rows = instances.reduce((sum, report) => sum + report.rows_checked, 0);
        const final = await change({
          action: 'SWITCH',
          state: 'PROMOTED',
          share: 1,
          champion: options.candidate,
          actor: options.actor,
          reason: `loaded and warmed in ${live.length} instance${live.length === 1 ? '' : 's'} (${rows} recent rows scored): all traffic switched`,
        });
        options.logger.info({ model, deployment: final.deployment_id, instances: live.length }, 'blue-green switched');
        return { final, instances };
      }
      if (options.signal?.aborted || Date.now() > deadline) {
        const final = await change({
          action: 'ABORT',
          state: 'ABORTED',
          share: 0,
          actor: options.actor,
          reason: options.signal?.aborted
            ? 'stopped before every instance was ready'
            : `${instances.length} of ${live.length} live instances ready after ${Math.round(options.warmTimeoutMs / 1000)} s`,
        });
        return { final, instances };
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/**
 * Switches a blue-green deployment back: the model's latest record must be its SWITCH; one
 * SWITCH_BACK record returns the champion alias to the version it replaced (still loaded).
 */
export async function switchBack(
  options: Pick<BlueGreenOptions, 'kafka' | 'registryUrl' | 'registry' | 'actor'> & { readonly model: string; readonly reason: string },
): Promise<DeploymentRecord> {
  const records = (await readDeployments({ ...options.registry, topic: options.registry.deployments.topic })).filter(
    (candidate) => candidate.model_name === options.model,
  );
  const latest = records.at(-1);
  if (latest?.strategy !== 'BLUE_GREEN' || latest.action !== 'SWITCH')
    throw new RolloutError(
      'SLUICE_NOTHING_TO_SWITCH_BACK',
      `the latest deployment of ${options.model} is not a blue-green switch (${latest ? `${latest.strategy} ${latest.action}` : 'none'})`,
    );
  const start = records.find((candidate) => candidate.deployment_id === latest.deployment_id && candidate.sequence === 0);
  if (!start) throw new RolloutError('SLUICE_NOTHING_TO_SWITCH_BACK', `deployment ${latest.deployment_id} has no START record`);
  return changeRollout(options.registry, latest, {
    action: 'SWITCH_BACK',
    state: 'ROLLED_BACK',
    share: 0,
    champion: start.champion_version,
    actor: options.actor,
    reason: options.reason,
  });
}
