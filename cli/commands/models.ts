import path from 'node:path';
import { ConfigError } from '../../common/errors.js';
import { createKafka } from '../../kafka/index.js';
import { trainModel } from '../../jobs/train.js';
import { readModelRegistry, rollback, setAlias, type RegistryOptions } from '../../models/registry.js';
import { registerSchemas } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import type { TrainerKind } from '../../models/trainer.js';
import { topologySubjects } from '../../app/stages.js';
import { modelNamed, type Topology } from '../../topology/index.js';
import { commandTopology } from '../topology.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';
import { progressBar } from '../progress.js';
import { rangeOf, type RangeOptions } from '../range.js';

/** Where registry.models is, for reading: no schema ids needed (each message names its writer's schema). */
async function registryReader(context: CommandContext): Promise<Omit<RegistryOptions, 'schemaId'>> {
  const cluster = await findCluster(context.config);
  return {
    kafka: createKafka({ brokers: cluster.brokers, clientId: 'sluice-cli', logger: context.logger }),
    topic: `${context.config.topicPrefix}registry.models`,
    registryUrl: cluster.registryUrl,
  };
}

/** Where registry.models is, for writing: the topology's schemas registered (idempotent), their ids. */
async function registryWriter(
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

function isTrainer(text: string): text is TrainerKind {
  return text === 'logistic' || text === 'mlp';
}

export interface TrainOptions extends RangeOptions {
  readonly trainer?: string;
  readonly epochs?: string;
  readonly seed?: string;
  readonly promote?: boolean;
}

/** `sluice train <model>`: trains from replayed topics, registers a version (champion with --promote, or when there is none). */
export async function trainCommand(context: CommandContext, name: string, options: TrainOptions): Promise<number> {
  const range = rangeOf(options);
  const topology = await commandTopology(context.config);
  const model = modelNamed(topology, name);
  if (options.trainer !== undefined && !isTrainer(options.trainer))
    throw new ConfigError(`--trainer is logistic or mlp, got "${options.trainer}"`);
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
  const report = await trainModel({
    kafka: registry.kafka,
    topicPrefix: context.config.topicPrefix,
    registryUrl: registry.registryUrl,
    modelsSchemaId: registry.schemaId,
    versions,
    artifactsDir: path.join(context.config.dataDir, 'models'),
    model,
    range,
    ...(options.trainer !== undefined && isTrainer(options.trainer) ? { trainer: options.trainer } : {}),
    ...(options.epochs ? { epochs: Number(options.epochs) } : {}),
    ...(options.seed ? { seed: Number(options.seed) } : {}),
    aliases: options.promote || !hasChampion ? ['champion'] : [],
    logger: context.logger,
    onProgress: (done, total) => bar.update(done, total),
  });
  bar.stop();
  const { evaluation } = report;
  process.stdout.write(
    [
      `${name} v${report.version.version} (${report.version.trainer}) registered${report.version.aliases.length > 0 ? ` as ${report.version.aliases.join(', ')}` : ''}`,
      `  training set: ${report.trainRows} rows, held-out (latest ${Math.round(model.testFraction * 100)}% of time): ${report.testRows} rows, ${evaluation.positives} positives`,
      `  held-out: AUC ${evaluation.auc.toFixed(4)}, log loss ${evaluation.log_loss.toFixed(4)}, precision ${evaluation.precision.toFixed(3)} / recall ${evaluation.recall.toFixed(3)} at ${evaluation.threshold}, ECE ${evaluation.ece.toFixed(4)} (train AUC ${report.trainAuc.toFixed(4)})`,
      `  epochs: ${report.epochSeconds.map((seconds) => seconds.toFixed(2)).join(' ')} s on ${report.backend}; ONNX vs trainer max |Δ| ${report.parityMaxDiff.toExponential(2)}; artifact ${report.version.artifact_sha256}`,
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
