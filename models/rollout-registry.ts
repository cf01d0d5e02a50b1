import { randomUUID } from 'node:crypto';
import { SluiceError } from '../common/errors.js';
import { aliasMessages, aliasMove, ModelRegistryError, readModelRegistry, type RegistryOptions } from './registry.js';
import { transactOnModel, type RegistryMessage } from './registry-transaction.js';
import {
  deploymentKey,
  latestDeployment,
  readDeployments,
  type DeploymentRecord,
  type DeploymentStrategy,
  type DeploymentsTopic,
} from './rollout.js';

/** A rollout cannot start or change (another one runs, the versions are wrong). */
export class RolloutError extends SluiceError {}

/** registry.models and registry.deployments, for a rollout's records. */
export type RolloutRegistry = RegistryOptions & { readonly deployments: DeploymentsTopic };

function deploymentMessage(registry: RolloutRegistry, record: DeploymentRecord): RegistryMessage {
  return { topic: registry.deployments.topic, key: deploymentKey(record), schemaId: registry.deployments.schemaId, value: record };
}

const live = (record: DeploymentRecord | undefined): boolean => record?.state === 'RUNNING' || record?.state === 'PAUSED';

export interface RolloutStart {
  readonly model: string;
  readonly strategy: Exclude<DeploymentStrategy, 'DIRECT'>;
  readonly candidate: number;
  readonly share: number;
  readonly steps?: readonly number[];
  readonly stepEveryMs?: number;
  readonly gates?: Readonly<Record<string, string>>;
  readonly actor: string;
  readonly reason: string;
}

/**
 * Starts a rollout: one START record naming the champion and the candidate, written only when no
 * other rollout of the model runs (checked inside the model's registry transaction).
 */
export async function startRollout(registry: RolloutRegistry, start: RolloutStart): Promise<DeploymentRecord> {
  return transactOnModel(registry, start.model, async () => {
    const versions = (await readModelRegistry(registry)).filter((version) => version.name === start.model);
    const champion = versions.find((version) => version.aliases.includes('champion'));
    if (!champion) throw new RolloutError('SLUICE_NO_CHAMPION', `model ${start.model} has no champion to roll out against`);
    if (!versions.some((version) => version.version === start.candidate))
      throw new ModelRegistryError('SLUICE_UNKNOWN_MODEL_VERSION', `model ${start.model} has no version ${start.candidate}`);
    if (champion.version === start.candidate)
      throw new RolloutError('SLUICE_ROLLOUT_SAME_VERSION', `version ${start.candidate} of ${start.model} is the champion already`);
    const running = latestDeployment(await readDeployments({ ...registry, topic: registry.deployments.topic }), start.model);
    if (running && live(running))
      throw new RolloutError(
        'SLUICE_ROLLOUT_RUNNING',
        `model ${start.model} has a ${running.strategy.toLowerCase()} rollout ${running.deployment_id} of version ${running.candidate_version ?? '?'} running; abort it first`,
      );
    const record: DeploymentRecord = {
      deployment_id: randomUUID(),
      sequence: 0,
      model_name: start.model,
      strategy: start.strategy,
      action: 'START',
      state: 'RUNNING',
      champion_version: champion.version,
      candidate_version: start.candidate,
      candidate_share: start.share,
      steps: start.steps ?? [],
      step_index: 0,
      step_every_ms: start.stepEveryMs ?? 0,
      gates: start.gates ?? {},
      actor: start.actor,
      reason: start.reason,
      event_time: null,
      at: Date.now(),
    };
    return { messages: [deploymentMessage(registry, record)], result: record };
  });
}

export interface RolloutChange {
  readonly action: DeploymentRecord['action'];
  readonly state: DeploymentRecord['state'];
  readonly share: number;
  readonly stepIndex?: number;
  readonly actor: string;
  readonly reason: string;
  readonly eventTime?: number;
  /** The version that becomes champion with this change (a promotion, a blue-green switch): moved in the same transaction. */
  readonly champion?: number;
  /** More records for the same transaction (an alert). */
  readonly extra?: readonly RegistryMessage[];
}

/**
 * The next record of a running rollout, with the champion alias move it implies, in one
 * transaction: a rollback is one record (the candidate's share to 0), a promotion the record and
 * the alias together. Refused when the rollout is no longer the model's latest, or has ended.
 */
export async function changeRollout(
  registry: RolloutRegistry,
  current: DeploymentRecord,
  change: RolloutChange,
): Promise<DeploymentRecord> {
  return transactOnModel(registry, current.model_name, async () => {
    const latest = latestDeployment(await readDeployments({ ...registry, topic: registry.deployments.topic }), current.model_name);
    if (latest?.deployment_id !== current.deployment_id || (!live(latest) && change.action !== 'SWITCH_BACK'))
      throw new RolloutError(
        'SLUICE_ROLLOUT_ENDED',
        `rollout ${current.deployment_id} of ${current.model_name} is not running (latest: ${latest ? `${latest.deployment_id} ${latest.state}` : 'none'})`,
      );
    const record: DeploymentRecord = {
      ...latest,
      sequence: latest.sequence + 1,
      action: change.action,
      state: change.state,
      champion_version: change.champion ?? latest.champion_version,
      candidate_share: change.share,
      step_index: change.stepIndex ?? latest.step_index,
      actor: change.actor,
      reason: change.reason,
      event_time: change.eventTime ?? null,
      at: Date.now(),
    };
    const moves =
      change.champion === undefined
        ? []
        : aliasMessages(
            { ...registry, deployments: undefined },
            aliasMove(await readModelRegistry(registry), current.model_name, change.champion, 'champion'),
          );
    return { messages: [...moves, deploymentMessage(registry, record), ...(change.extra ?? [])], result: record };
  });
}
