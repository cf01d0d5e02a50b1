import path from 'node:path';
import { ConfigError } from '../../common/errors.js';
import { createKafka } from '../../kafka/index.js';
import { trainModel } from '../../jobs/train.js';
import { readModelRegistry, rollback, setAlias, type RegistryOptions } from '../../models/registry.js';
import { registerSchemas } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import type { TrainerKind } from '../../models/trainer.js';
import type { TrainerEngine } from '../../jobs/engines.js';
import { topologySubjects } from '../../app/stages.js';
import { modelNamed, type Topology } from '../../topology/index.js';
import { commandTopology } from '../topology.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';
import { progressBar } from '../progress.js';
import { rangeOf, type RangeOptions } from '../range.js';

/** Where registry.models is, for reading: no schema ids needed (each message names its writer's schema). */
export async function registryReader(context: CommandContext): Promise<Omit<RegistryOptions, 'schemaId'>> {
  const cluster = await findCluster(context.config);
  return {
    kafka: createKafka({ brokers: cluster.brokers, clientId: 'sluice-cli', logger: context.logger }),
    topic: `${context.config.topicPrefix}registry.models`,
    registryUrl: cluster.registryUrl,
  };
}

/** Where registry.models is, for writing: the topology's schemas registered (idempotent), their ids. */
export async function registryWriter(
  context: CommandContext,
  topology?: Topology,
): Promise<RegistryOptions & { readonly schemaIds: Map<string, number> }> {
  const reader = await registryReader(context);
  const schemaIds = await registerSchemas(
    reader.registryUrl,
    topologySubjects(context.config.topicPrefix, topology ?? (await commandTopology(context.config))),
    context.logger,
  );
  return { ...reader, schemaId: schemaIds.get(`${context.config.topicPrefix}registry.models-value`) ?? 0, schemaIds };
}

const TRAINERS = ['tfjs', 'jax', 'logistic', 'mlp'] as const;

/** `--trainer`: an engine (tfjs, jax) or, as before, a TensorFlow.js architecture (logistic, mlp). */
export function trainerOption(text: string | undefined, kind: string | undefined): { engine?: TrainerEngine; kind?: TrainerKind } {
  if (text !== undefined && !(TRAINERS as readonly string[]).includes(text))
    throw new ConfigError(`--trainer is tfjs, jax, logistic or mlp, got "${text}"`);
  if (kind !== undefined && kind !== 'logistic' && kind !== 'mlp') throw new ConfigError(`--kind is logistic or mlp, got "${kind}"`);
  const engine = text === 'jax' ? 'jax' : text === undefined ? undefined : 'tfjs';
  const architecture = kind ?? (text === 'logistic' || text === 'mlp' ? text : undefined);
  return { ...(engine ? { engine } : {}), ...(architecture ? { kind: architecture } : {}) };
}

export function deviceOption(text: string | undefined): 'auto' | 'cpu' | 'gpu' | undefined {
  if (text === undefined) return undefined;
  if (text !== 'auto' && text !== 'cpu' && text !== 'gpu') throw new ConfigError(`--device is auto, cpu or gpu, got "${text}"`);
  return text;
}

export function numberOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new ConfigError(`${name} takes a number, got "${text}"`);
  return value;
}

export interface TrainOptions extends RangeOptions {
  readonly trainer?: string;
  readonly kind?: string;
  readonly epochs?: string;
  readonly seed?: string;
  readonly promote?: boolean;
  readonly fromRun?: string;
  readonly python?: string;
  readonly device?: string;
  readonly alert?: string;
}

/** `sluice train <model>`: trains from replayed topics, registers a version (champion with --promote, or when there is none). */
export async function trainCommand(context: CommandContext, name: string, options: TrainOptions): Promise<number> {
  const range = rangeOf(options);
  const topology = await commandTopology(context.config);
  const model = modelNamed(topology, name);
  const { engine, kind } = trainerOption(options.trainer, options.kind);
  const device = deviceOption(options.device);
  if (options.fromRun && Object.keys(range).length > 0)
    throw new ConfigError("--from-run reads the run's own offsets: leave out --from/--to");
  const alertId = options.alert?.trim();
  if (alertId === '') throw new ConfigError('--alert takes the id of the alert that triggered the run');
  const registry = await registryWriter(context, topology);
  const versions = await publishFeatureViews(topology.views, {
    kafka: registry.kafka,
    topic: `${context.config.topicPrefix}registry.features`,
    registryUrl: registry.registryUrl,
    schemaId: registry.schemaIds.get(`${context.config.topicPrefix}registry.features-value`) ?? 0,
    logger: context.logger,
  });
  const hasChampion = (await readModelRegistry(registry)).some((version) => version.name === name && version.aliases.includes('champion'));
  const bar = progressBar('replay');
  const epochs = numberOption('--epochs', options.epochs);
  const seed = numberOption('--seed', options.seed);
  const report = await trainModel({
    kafka: registry.kafka,
    topicPrefix: context.config.topicPrefix,
    registryUrl: registry.registryUrl,
    modelsSchemaId: registry.schemaId,
    experimentsSchemaId: registry.schemaIds.get(`${context.config.topicPrefix}registry.experiments-value`) ?? 0,
    versions,
    artifactsDir: path.join(context.config.dataDir, 'models'),
    runsDir: path.join(context.config.dataDir, 'runs'),
    model,
    range,
    ...(engine ? { engine } : {}),
    ...(kind ? { trainer: kind } : {}),
    ...(epochs !== undefined ? { epochs } : {}),
    ...(seed !== undefined ? { seed } : {}),
    ...(options.fromRun ? { fromRun: options.fromRun } : {}),
    ...(alertId !== undefined ? { trigger: { kind: 'alert' as const, alertId } } : {}),
    jax: { ...(options.python ? { python: options.python } : {}), ...(device ? { device } : {}) },
    aliases: options.promote || !hasChampion ? ['champion'] : [],
    logger: context.logger,
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.stop();
  const { evaluation } = report;
  const rebuilt = report.rebuiltFrom;
  const sameWeights = rebuilt?.model_version
    ? (await readModelRegistry(registry)).find((version) => version.name === name && version.version === rebuilt.model_version)
        ?.artifact_sha256 === report.version.artifact_sha256
    : null;
  process.stdout.write(
    [
      `${name} v${report.version.version} (${report.version.trainer}) registered${report.version.aliases.length > 0 ? ` as ${report.version.aliases.join(', ')}` : ''}; run ${report.runId}`,
      `  training set: ${report.trainRows} rows, held-out (latest ${Math.round(model.testFraction * 100)}% of time): ${report.testRows} rows, ${evaluation.positives} positives; dataset ${report.datasetSha256}`,
      ...(rebuilt
        ? [
            `  rebuilt from run ${rebuilt.run_id}: the same dataset hash${sameWeights === null ? '' : sameWeights ? `, the same weights as v${rebuilt.model_version} (identical ONNX artifact)` : `, other weights than v${rebuilt.model_version}`}`,
          ]
        : []),
      `  held-out: AUC ${evaluation.auc.toFixed(4)}, log loss ${evaluation.log_loss.toFixed(4)}, precision ${evaluation.precision.toFixed(3)} / recall ${evaluation.recall.toFixed(3)} at ${evaluation.threshold}, ECE ${evaluation.ece.toFixed(4)} (train AUC ${report.trainAuc.toFixed(4)})`,
      `  epochs: ${report.epochSeconds.map((seconds) => (seconds === null ? '?' : seconds.toFixed(2))).join(' ')} s on ${report.backend}; ONNX vs trainer max |Δ| ${report.parityMaxDiff.toExponential(2)}; artifact ${report.version.artifact_sha256}`,
      '',
    ].join('\n'),
  );
  return 0;
}

export async function listModelsCommand(context: CommandContext, options: { readonly json?: boolean }): Promise<number> {
  const versions = await readModelRegistry(await registryReader(context));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(versions)}\n`);
    return 0;
  }
  if (versions.length === 0) process.stdout.write('no model versions registered yet (sluice train <model>)\n');
  for (const version of versions) {
    process.stdout.write(
      `${version.name} v${version.version}  ${version.aliases.join(',') || '-'}  ${version.trainer}  AUC ${version.metrics.auc?.toFixed(4) ?? '?'}  ${new Date(version.created_at).toISOString()}\n`,
    );
  }
  return 0;
}

export async function showModelCommand(context: CommandContext, name: string, version?: string): Promise<number> {
  const versions = (await readModelRegistry(await registryReader(context))).filter((candidate) => candidate.name === name);
  const chosen =
    version === undefined
      ? (versions.find((candidate) => candidate.aliases.includes('champion')) ?? versions.at(-1))
      : versions.find((candidate) => candidate.version === Number(version));
  if (!chosen) throw new ConfigError(`model ${name} has no ${version === undefined ? 'versions' : `version ${version}`}`);
  process.stdout.write(`${JSON.stringify(chosen, null, 2)}\n`);
  return 0;
}

export async function promoteCommand(
  context: CommandContext,
  name: string,
  version: string,
  options: { readonly alias: string },
): Promise<number> {
  await setAlias(await registryWriter(context), name, Number(version), options.alias);
  process.stdout.write(`${name} v${version} is now ${options.alias}\n`);
  return 0;
}

export async function rollbackCommand(context: CommandContext, name: string): Promise<number> {
  const version = await rollback(await registryWriter(context), name);
  process.stdout.write(`${name}: champion rolled back to v${version}\n`);
  return 0;
}
