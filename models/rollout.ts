import { createHash } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { readRegistryTopic } from '../schemas/index.js';

/**
 * Deployments as registry events: every change of how a model's traffic is served (a direct
 * champion move, a canary's start, steps and verdict, a shadow, a blue-green switch) is one
 * record of registry.deployments with who made it and why. The latest record of a model at a
 * time is its traffic at that time; replaying the topic rebuilds the whole history.
 */
export type DeploymentStrategy = 'DIRECT' | 'CANARY' | 'SHADOW' | 'BLUE_GREEN';
export type DeploymentAction = 'START' | 'STEP' | 'PAUSE' | 'RESUME' | 'PROMOTE' | 'ROLLBACK' | 'ABORT' | 'SWITCH' | 'SWITCH_BACK';
export type DeploymentState = 'RUNNING' | 'PAUSED' | 'PROMOTED' | 'ROLLED_BACK' | 'ABORTED';
export type Role = 'CHAMPION' | 'CANARY' | 'SHADOW' | 'FALLBACK';

export interface DeploymentRecord {
  readonly deployment_id: string;
  readonly sequence: number;
  readonly model_name: string;
  readonly strategy: DeploymentStrategy;
  readonly action: DeploymentAction;
  readonly state: DeploymentState;
  readonly champion_version: number;
  readonly candidate_version: number | null;
  readonly candidate_share: number;
  readonly steps: readonly number[];
  readonly step_index: number;
  readonly step_every_ms: number;
  readonly gates: Readonly<Record<string, string>>;
  readonly actor: string;
  readonly reason: string;
  readonly event_time: number | null;
  readonly at: number;
}

/** Where registry.deployments is, for writing: the topic and the registered id of its values' schema. */
export interface DeploymentsTopic {
  readonly topic: string;
  readonly schemaId: number;
}

export function deploymentKey(record: Pick<DeploymentRecord, 'deployment_id' | 'sequence'>): string {
  return `${record.deployment_id}:${record.sequence}`;
}

/** Every deployment record, in log order. */
export async function readDeployments(options: {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly registryUrl: string;
}): Promise<DeploymentRecord[]> {
  return [...(await readRegistryTopic<DeploymentRecord>({ ...options, contract: 'registry.deployments' })).values()];
}

/** The model's latest record (log order), if any. */
export function latestDeployment(records: readonly DeploymentRecord[], model: string): DeploymentRecord | undefined {
  return records.filter((record) => record.model_name === model).at(-1);
}

/** One line of a model's traffic at a time: a version, its role and its share of decisions. */
export interface TrafficShare {
  readonly version: number;
  readonly role: Role;
  readonly share: number;
}

export interface TrafficAt {
  readonly model: string;
  readonly at: number;
  readonly deployment: DeploymentRecord | undefined;
  readonly shares: readonly TrafficShare[];
}

/**
 * Which versions served which share of the model's traffic at `at`: the latest record written at
 * or before it. A running canary splits decisions; a shadow scores everything without deciding.
 */
export function trafficAt(records: readonly DeploymentRecord[], model: string, at: number): TrafficAt {
  const record = records.filter((candidate) => candidate.model_name === model && candidate.at <= at).at(-1);
  return { model, at, deployment: record, shares: record ? sharesOf(record) : [] };
}

export function sharesOf(record: DeploymentRecord): TrafficShare[] {
  const champion = { version: record.champion_version, role: 'CHAMPION' as const };
  if (record.state !== 'RUNNING' && record.state !== 'PAUSED') return [{ ...champion, share: 1 }];
  const candidate = record.candidate_version;
  if (candidate === null) return [{ ...champion, share: 1 }];
  if (record.strategy === 'SHADOW')
    return [
      { ...champion, share: 1 },
      { version: candidate, role: 'SHADOW', share: 0 },
    ];
  // Blue-green while warming: the candidate is loaded everywhere but decides nothing until the switch.
  if (record.strategy === 'BLUE_GREEN') return [{ ...champion, share: 1 }];
  const share = record.candidate_share;
  return [
    ...(share < 1 ? [{ ...champion, share: 1 - share }] : []),
    ...(share > 0 ? [{ version: candidate, role: 'CANARY' as const, share }] : []),
  ];
}

/**
 * The entity's place in [0, 1) for a deployment: a hash of the deployment id and the entity, so a
 * card sees the same version for a whole step, a replay reproduces the split, and an entity in a
 * canary at 5% stays in it at 25% (shares only grow). Another deployment draws another cohort.
 */
export function entityBucket(deploymentId: string, entity: string): number {
  const digest = createHash('sha256').update(deploymentId).update('\u0000').update(entity).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

/** Whether the candidate decides for this entity under the record. */
export function routesToCandidate(record: DeploymentRecord, entity: string): boolean {
  if (record.strategy !== 'CANARY' || (record.state !== 'RUNNING' && record.state !== 'PAUSED') || record.candidate_version === null)
    return false;
  return entityBucket(record.deployment_id, entity) < record.candidate_share;
}

/** A champion moved by hand or by a training (`promote`, `rollback`, `train --promote`): one DIRECT record. */
export function directRecord(
  model: string,
  version: number,
  actor: string,
  reason: string,
  deploymentId: string,
  at: number,
): DeploymentRecord {
  return {
    deployment_id: deploymentId,
    sequence: 0,
    model_name: model,
    strategy: 'DIRECT',
    action: 'PROMOTE',
    state: 'PROMOTED',
    champion_version: version,
    candidate_version: null,
    candidate_share: 0,
    steps: [],
    step_index: 0,
    step_every_ms: 0,
    gates: {},
    actor,
    reason,
    event_time: null,
    at,
  };
}
