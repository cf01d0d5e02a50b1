import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { SluiceError } from '../common/errors.js';
import type { ModelReference } from '../monitoring/index.js';
import { readRegistryTopic } from '../schemas/index.js';
import type { CategoricalEncoding } from './encoding.js';
import { transactOnModel, type RegistryMessage } from './registry-transaction.js';
import { deploymentKey, directRecord, type DeploymentsTopic } from './rollout.js';

/**
 * The model registry: versions with lineage in `registry.models` (compacted, keyed
 * `name:version`, one partition for one order), aliases such as `champion` moved by re-publishing
 * both versions' records (every write a transaction that fences the model's other writers), and artifacts in the data directory by content hash
 * (`<dataDir>/models/<sha256>/model.onnx` and `model.json`). Replaying the topic rebuilds it.
 */
export interface ModelVersion {
  readonly name: string;
  readonly version: number;
  readonly aliases: readonly string[];
  readonly artifact_sha256: string;
  readonly trainer: string;
  readonly params: Readonly<Record<string, string>>;
  readonly metrics: Readonly<Record<string, number>>;
  readonly dataset: {
    readonly ranges: readonly {
      readonly topic: string;
      readonly partition: number;
      readonly start_offset: number;
      readonly end_offset: number;
    }[];
    readonly feature_versions: Readonly<Record<string, number>>;
  };
  readonly code_commit: string | null;
  readonly run_id: string | null;
  readonly created_at: number;
}

export class ModelRegistryError extends SluiceError {}

export interface RegistryOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly registryUrl: string;
  /** Registered schema id of registry.models values. */
  readonly schemaId: number;
  /** When given, every champion move also writes a DIRECT record there, in the same transaction. */
  readonly deployments?: DeploymentsTopic;
  /** Who moves aliases, for deployment records (a user name, `train`). */
  readonly actor?: string;
}

export async function readModelRegistry(options: Omit<RegistryOptions, 'schemaId'>): Promise<ModelVersion[]> {
  const versions = await readRegistryTopic<ModelVersion>({ ...options, contract: 'registry.models' });
  return [...versions.values()].sort((left, right) => left.name.localeCompare(right.name) || left.version - right.version);
}

function message(options: RegistryOptions, record: ModelVersion): RegistryMessage {
  return { topic: options.topic, key: `${record.name}:${record.version}`, schemaId: options.schemaId, value: record };
}

/**
 * Registers the next version of a model with its aliases; returns it. The number is taken in a
 * transaction that fences other writers of the model, so concurrent registrations never share one.
 */
export async function registerModelVersion(
  options: RegistryOptions,
  version: Omit<ModelVersion, 'version' | 'aliases'>,
  aliases: readonly string[] = [],
): Promise<ModelVersion> {
  return transactOnModel(options, version.name, async () => {
    const existing = (await readModelRegistry(options)).filter((candidate) => candidate.name === version.name);
    const record: ModelVersion = { ...version, version: Math.max(0, ...existing.map((candidate) => candidate.version)) + 1, aliases: [] };
    let versions = [...existing, record];
    const changed = new Map<number, ModelVersion>([[record.version, record]]);
    for (const alias of aliases) {
      for (const moved of aliasMove(versions, record.name, record.version, alias)) changed.set(moved.version, moved);
      versions = versions.map((candidate) => changed.get(candidate.version) ?? candidate);
    }
    const registered = changed.get(record.version) ?? record;
    return {
      messages: aliasMessages(options, [...changed.values()], `version ${record.version} registered as ${aliases.join(', ')}`),
      result: registered,
    };
  });
}

/**
 * The records that point an alias at a version: the version that held it without it, the target
 * with it (none when it already holds it). Throws when the model has no such version.
 */
export function aliasMove(versions: readonly ModelVersion[], name: string, version: number, alias: string): ModelVersion[] {
  const own = versions.filter((candidate) => candidate.name === name);
  const target = own.find((candidate) => candidate.version === version);
  if (!target)
    throw new ModelRegistryError(
      'SLUICE_UNKNOWN_MODEL_VERSION',
      `model ${name} has no version ${version}; versions: ${own.map((candidate) => candidate.version).join(', ') || 'none'}`,
    );
  if (target.aliases.includes(alias)) return [];
  const changed: ModelVersion[] = own
    .filter((candidate) => candidate.version !== version && candidate.aliases.includes(alias))
    .map((candidate) => ({ ...candidate, aliases: candidate.aliases.filter((existing) => existing !== alias) }));
  changed.push({ ...target, aliases: [...target.aliases, alias] });
  return changed;
}

/** The registry.models messages of an alias move, for a transaction that writes more (a deployment record). */
export function aliasMessages(options: RegistryOptions, records: readonly ModelVersion[], reason = 'alias moved'): RegistryMessage[] {
  const messages = records.map((record) => message(options, record));
  const champion = records.find((record) => record.aliases.includes('champion'));
  if (options.deployments && champion) {
    const record = directRecord(champion.name, champion.version, options.actor ?? 'sluice', reason, randomUUID(), Date.now());
    messages.push({ topic: options.deployments.topic, key: deploymentKey(record), schemaId: options.deployments.schemaId, value: record });
  }
  return messages;
}

/** Points an alias at a version (taking it from the version that held it), in one transaction. */
export async function setAlias(
  options: RegistryOptions,
  name: string,
  version: number,
  alias: string,
  reason = `${alias} set to version ${version}`,
): Promise<void> {
  await transactOnModel(options, name, async () => ({
    messages: aliasMessages(options, aliasMove(await readModelRegistry(options), name, version, alias), reason),
    result: undefined,
  }));
}

/** Moves `champion` back to `to`, or the highest version below the current champion; returns it. */
export async function rollback(options: RegistryOptions, name: string, to?: number): Promise<number> {
  const versions = (await readModelRegistry(options)).filter((candidate) => candidate.name === name);
  const current = versions.find((candidate) => candidate.aliases.includes('champion'));
  if (!current) throw new ModelRegistryError('SLUICE_NO_CHAMPION', `model ${name} has no champion to roll back`);
  const previous =
    to === undefined
      ? versions.filter((candidate) => candidate.version < current.version).at(-1)
      : versions.find((candidate) => candidate.version === to);
  if (!previous)
    throw new ModelRegistryError(
      'SLUICE_NO_PREVIOUS_VERSION',
      to === undefined ? `model ${name} has no version before ${current.version}` : `model ${name} has no version ${to}`,
    );
  await setAlias(options, name, previous.version, 'champion', `rolled back from version ${current.version}`);
  return previous.version;
}

/** The content-addressed artifact folder. */
export class ArtifactStore {
  constructor(readonly dir: string) {}

  async put(onnxBytes: Uint8Array, metadata: unknown): Promise<string> {
    const sha = createHash('sha256').update(onnxBytes).digest('hex');
    const folder = path.join(this.dir, sha);
    const staging = `${folder}.tmp-${randomUUID()}`;
    await fs.mkdir(staging, { recursive: true });
    await fs.writeFile(path.join(staging, 'model.onnx'), onnxBytes);
    await fs.writeFile(path.join(staging, 'model.json'), `${JSON.stringify(metadata, null, 2)}\n`);
    try {
      await fs.rename(staging, folder);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      // Content-addressed: another writer (a concurrent training) stored the same bytes. Keep a
      // complete copy; replace one that no longer matches its name.
      const intact = await this.get(sha).then(
        () => true,
        () => false,
      );
      if (!intact) {
        await fs.rm(folder, { recursive: true, force: true });
        await fs.rename(staging, folder);
      }
      await fs.rm(staging, { recursive: true, force: true });
    }
    return sha;
  }

  async get(sha: string): Promise<{ readonly onnx: Uint8Array; readonly metadata: ModelMetadata }> {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new ModelRegistryError('SLUICE_BAD_ARTIFACT', `"${sha}" is not a sha256`);
    const folder = path.join(this.dir, sha);
    const onnx = await fs.readFile(path.join(folder, 'model.onnx'));
    const actual = createHash('sha256').update(onnx).digest('hex');
    if (actual !== sha) throw new ModelRegistryError('SLUICE_ARTIFACT_CORRUPT', `artifact ${sha} has content hash ${actual}`);
    return { onnx, metadata: JSON.parse(await fs.readFile(path.join(folder, 'model.json'), 'utf8')) as ModelMetadata };
  }
}

/** What is stored beside model.onnx. */
export interface ModelMetadata {
  readonly name: string;
  readonly inputs: readonly string[];
  /** Values that fill missing inputs (the training means). */
  readonly fill: readonly number[];
  readonly threshold: number;
  readonly trainer: string;
  readonly metrics: Readonly<Record<string, number>>;
  /** Training statistics of every input: the drift baseline. */
  readonly baseline: Readonly<Record<string, FeatureBaseline>>;
  /** The one-hot vocabulary of categorical inputs (`inputs` holds their `<field>=<category>` columns); absent before categorical inputs. */
  readonly categorical?: readonly CategoricalEncoding[];
  /** The drift reference: mergeable summaries of the training set (monitoring/reference.ts); absent in older artifacts. */
  readonly reference?: ModelReference;
}

export interface FeatureBaseline {
  readonly count: number;
  readonly missing: number;
  readonly mean: number;
  readonly std: number;
  /** Quantiles 0, 0.1, ..., 1. */
  readonly quantiles: readonly number[];
  /** Ten equal-width bins between min and max. */
  readonly histogram: { readonly edges: readonly number[]; readonly counts: readonly number[] };
}

export function baselineOf(values: readonly (number | null)[]): FeatureBaseline {
  const present = values
    .filter((value): value is number => typeof value === 'number' && Number.isFinite(value))
    .sort((left, right) => left - right);
  const count = present.length;
  const mean = count === 0 ? 0 : present.reduce((sum, value) => sum + value, 0) / count;
  const std = count === 0 ? 0 : Math.sqrt(present.reduce((sum, value) => sum + (value - mean) ** 2, 0) / count);
  const quantiles = Array.from({ length: 11 }, (_, index) =>
    count === 0 ? 0 : (present[Math.min(count - 1, Math.floor((index / 10) * (count - 1)))] ?? 0),
  );
  const low = present[0] ?? 0;
  const high = present[count - 1] ?? 0;
  const width = (high - low) / 10 || 1;
  const counts = new Array<number>(10).fill(0);
  for (const value of present) {
    const bin = Math.min(9, Math.floor((value - low) / width));
    counts[bin] = (counts[bin] ?? 0) + 1;
  }
  return {
    count,
    missing: values.length - count,
    mean,
    std,
    quantiles,
    histogram: { edges: Array.from({ length: 11 }, (_, index) => low + index * width), counts },
  };
}
