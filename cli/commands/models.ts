import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../common/errors.js';
import { createKafka } from '../../kafka/index.js';
import { trainModel } from '../../jobs/train.js';
import { runCanary } from '../../jobs/canary.js';
import { parseGates } from '../../models/gates.js';
import { latestDeployment, readDeployments, trafficAt, type DeploymentRecord, type DeploymentsTopic } from '../../models/rollout.js';
import { changeRollout } from '../../models/rollout-registry.js';
import { runShadow } from '../../jobs/shadow.js';
import { runBlueGreen, switchBack } from '../../jobs/blue-green.js';
import { parseDuration } from '../../common/durations.js';
import { currentInputs, IncompatibleModelVersionError, versionProblems } from '../../models/guards.js';
import { ArtifactStore, readModelRegistry, rollback, setAlias, type RegistryOptions } from '../../models/registry.js';
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

export type RegistryWriter = RegistryOptions & {
  readonly schemaIds: Map<string, number>;
  readonly deployments: DeploymentsTopic;
  readonly actor: string;
};

/** Where registry.models is, for writing: the topology's schemas registered (idempotent), their ids. */
export async function registryWriter(context: CommandContext, topology?: Topology): Promise<RegistryWriter> {
  const reader = await registryReader(context);
  const schemaIds = await registerSchemas(
    reader.registryUrl,
    topologySubjects(context.config.topicPrefix, topology ?? (await commandTopology(context.config))),
    context.logger,
  );
  const prefix = context.config.topicPrefix;
  return {
    ...reader,
    schemaId: schemaIds.get(`${prefix}registry.models-value`) ?? 0,
    schemaIds,
    // Every champion move is also a deployment record: `models history` answers from them.
    deployments: { topic: `${prefix}registry.deployments`, schemaId: schemaIds.get(`${prefix}registry.deployments-value`) ?? 0 },
    actor: actor(),
  };
}

function actor(): string {
  try {
    return `${os.userInfo().username}@${os.hostname()}`;
  } catch {
    return `pid ${process.pid}@${os.hostname()}`;
  }
}

/** Publishes the topology's feature views to registry.features; their versions by name. */
export function publishViews(context: CommandContext, registry: RegistryWriter, topology: Topology): Promise<Map<string, number>> {
  return publishFeatureViews(topology.views, {
    kafka: registry.kafka,
    topic: `${context.config.topicPrefix}registry.features`,
    registryUrl: registry.registryUrl,
    schemaId: registry.schemaIds.get(`${context.config.topicPrefix}registry.features-value`) ?? 0,
    logger: context.logger,
  });
}

/** Where a training or tuning job reads and registers: the registry topics, the views' versions, the data directory's folders. */
export async function trainingTarget(context: CommandContext, registry: RegistryWriter, topology: Topology) {
  return {
    kafka: registry.kafka,
    topicPrefix: context.config.topicPrefix,
    registryUrl: registry.registryUrl,
    modelsSchemaId: registry.schemaId,
    experimentsSchemaId: registry.schemaIds.get(`${context.config.topicPrefix}registry.experiments-value`) ?? 0,
    versions: await publishViews(context, registry, topology),
    artifactsDir: path.join(context.config.dataDir, 'models'),
    runsDir: path.join(context.config.dataDir, 'runs'),
  };
}

/**
 * Refuses a version whose recorded inputs today's events and feature views (names and definition
 * versions) cannot give, before any traffic reaches it.
 */
async function guardVersion(
  context: CommandContext,
  registry: RegistryWriter,
  topology: Topology,
  name: string,
  version: number,
): Promise<void> {
  const found = (await readModelRegistry(registry)).find((candidate) => candidate.name === name && candidate.version === version);
  if (!found) throw new ConfigError(`model ${name} has no version ${version}`);
  const { metadata } = await new ArtifactStore(path.join(context.config.dataDir, 'models')).get(found.artifact_sha256);
  const viewVersions = await publishViews(context, registry, topology);
  const problems = versionProblems(found, metadata, currentInputs(modelNamed(topology, name), topology.views, viewVersions));
  if (problems.length > 0) throw new IncompatibleModelVersionError(name, version, problems);
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
  const target = await trainingTarget(context, registry, topology);
  const hasChampion = (await readModelRegistry(registry)).some((version) => version.name === name && version.aliases.includes('champion'));
  const bar = progressBar('replay');
  const epochs = numberOption('--epochs', options.epochs);
  const seed = numberOption('--seed', options.seed);
  const report = await trainModel({
    ...target,
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
    deployments: registry.deployments,
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
  const topology = await commandTopology(context.config);
  const registry = await registryWriter(context, topology);
  if (options.alias === 'champion') await guardVersion(context, registry, topology, name, Number(version));
  await setAlias(registry, name, Number(version), options.alias);
  process.stdout.write(`${name} v${version} is now ${options.alias}\n`);
  return 0;
}

export async function rollbackCommand(context: CommandContext, name: string, options: { readonly to?: string }): Promise<number> {
  const topology = await commandTopology(context.config);
  const registry = await registryWriter(context, topology);
  let to = options.to === undefined ? undefined : Number(options.to);
  if (to !== undefined && (!Number.isInteger(to) || to < 1)) throw new ConfigError(`--to is a version number, got "${options.to}"`);
  const versions = (await readModelRegistry(registry)).filter((candidate) => candidate.name === name);
  const champion = versions.find((candidate) => candidate.aliases.includes('champion'));
  to ??= champion ? versions.filter((candidate) => candidate.version < champion.version).at(-1)?.version : undefined;
  if (to !== undefined) await guardVersion(context, registry, topology, name, to);
  const version = await rollback(registry, name, to);
  process.stdout.write(`${name}: champion rolled back to v${version}\n`);
  return 0;
}

export interface DeployOptions {
  readonly canary?: boolean;
  readonly shadow?: boolean;
  readonly blueGreen?: boolean;
  readonly steps: string;
  readonly stepEvery: string;
  readonly gates?: string;
  readonly window: string;
  readonly for?: string;
  readonly warmTimeout: string;
}

/** Runs a rollout until it ends; SIGINT or SIGTERM abort it (each strategy says what that means). */
async function untilStopped<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    return await run(controller.signal);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

const printRecord = (record: DeploymentRecord): void => {
  process.stdout.write(
    `${new Date(record.at).toISOString()} ${record.strategy} ${record.action} ${record.state} candidate share ${(record.candidate_share * 100).toFixed(1)}%: ${record.reason}\n`,
  );
};

/**
 * `sluice models deploy <model> <version> --canary | --shadow | --blue-green`: guards the version,
 * then runs the rollout: a canary until its gates promote or roll it back; a shadow until `--for`
 * of event time has been compared (or it is stopped); a blue-green until every instance has warmed
 * the version and traffic has switched. Prints every record it writes.
 */
export async function deployCommand(context: CommandContext, name: string, version: string, options: DeployOptions): Promise<number> {
  const chosen = [options.canary, options.shadow, options.blueGreen].filter(Boolean).length;
  if (chosen !== 1) throw new ConfigError('choose one strategy: --canary, --shadow or --blue-green');
  const candidate = Number(version);
  if (!Number.isInteger(candidate) || candidate < 1) throw new ConfigError(`the version is a number, got "${version}"`);
  const topology = await commandTopology(context.config);
  const model = modelNamed(topology, name);
  const registry = await registryWriter(context, topology);
  await guardVersion(context, registry, topology, name, candidate);
  const prefix = context.config.topicPrefix;
  if (options.shadow) {
    const windowMs = parseDuration(options.window);
    const durationMs = options.for === undefined ? Number.POSITIVE_INFINITY : parseDuration(options.for);
    const outcome = await untilStopped((signal) =>
      runShadow({
        kafka: registry.kafka,
        registryUrl: registry.registryUrl,
        topicPrefix: prefix,
        registry,
        comparisons: { topic: `${prefix}monitoring.shadow`, schemaId: registry.schemaIds.get(`${prefix}monitoring.shadow-value`) ?? 0 },
        model: name,
        candidate,
        windowMs,
        durationMs,
        actor: registry.actor,
        logger: context.logger,
        signal,
        onRecord: printRecord,
        onWindow: (window) =>
          process.stdout.write(
            `${new Date(window.window_start).toISOString()} ${window.pairs} pairs: correlation ${window.score_correlation?.toFixed(4) ?? '-'}, decisions agree ${window.decision_agreement === null ? '-' : `${(window.decision_agreement * 100).toFixed(2)}%`}, p99 ${window.champion_latency_p99_ms ?? '-'} / ${window.shadow_latency_p99_ms ?? '-'} ms\n`,
          ),
      }),
    );
    process.stdout.write(`${name} v${candidate} shadow: ${outcome.final.reason}\n`);
    return 0;
  }
  if (options.blueGreen) {
    const outcome = await untilStopped((signal) =>
      runBlueGreen({
        kafka: registry.kafka,
        registryUrl: registry.registryUrl,
        topicPrefix: prefix,
        registry,
        model: name,
        candidate,
        warmTimeoutMs: parseDuration(options.warmTimeout),
        actor: registry.actor,
        logger: context.logger,
        signal,
        onRecord: printRecord,
      }),
    );
    return outcome.final.action === 'SWITCH' ? 0 : 1;
  }
  const steps = options.steps.split(',').map((step) => Number(step.trim()) / 100);
  if (steps.some((step) => !(step > 0 && step <= 1))) throw new ConfigError(`--steps are percentages in (0, 100], got "${options.steps}"`);
  const gates = parseGates(options.gates);
  const outcome = await untilStopped((signal) =>
    runCanary({
      kafka: registry.kafka,
      registryUrl: registry.registryUrl,
      topicPrefix: prefix,
      registry,
      alerts: { topic: `${prefix}monitoring.alerts`, schemaId: registry.schemaIds.get(`${prefix}monitoring.alerts-value`) ?? 0 },
      model,
      candidate,
      steps,
      stepEveryMs: parseDuration(options.stepEvery),
      gates,
      actor: registry.actor,
      logger: context.logger,
      signal,
      onRecord: printRecord,
    }),
  );
  process.stdout.write(
    `${name} v${candidate}: ${outcome.final.state} after ${outcome.canary.predictions} canary and ${outcome.champion.predictions} champion predictions, ${outcome.labelled} labelled\n`,
  );
  return outcome.final.state === 'PROMOTED' ? 0 : 1;
}

/** `sluice models abort <model>`: ends the model's running rollout in one ABORT record; the champion keeps all traffic. */
export async function abortRolloutCommand(context: CommandContext, name: string): Promise<number> {
  const topology = await commandTopology(context.config);
  const registry = await registryWriter(context, topology);
  const latest = latestDeployment(await readDeployments({ ...registry, topic: registry.deployments.topic }), name);
  if (latest?.state !== 'RUNNING' && latest?.state !== 'PAUSED')
    throw new ConfigError(`model ${name} has no running rollout (latest: ${latest ? `${latest.strategy} ${latest.state}` : 'none'})`);
  const record = await changeRollout(registry, latest, {
    action: 'ABORT',
    state: 'ABORTED',
    share: 0,
    actor: registry.actor,
    reason: `aborted by ${registry.actor}`,
  });
  printRecord(record);
  return 0;
}

/** `sluice models switch-back <model>`: undoes the latest blue-green switch in one registry record. */
export async function switchBackCommand(context: CommandContext, name: string): Promise<number> {
  const topology = await commandTopology(context.config);
  const registry = await registryWriter(context, topology);
  const record = await switchBack({
    kafka: registry.kafka,
    registryUrl: registry.registryUrl,
    registry,
    actor: registry.actor,
    model: name,
    reason: `switched back by ${registry.actor}`,
  });
  printRecord(record);
  process.stdout.write(`${name}: champion switched back to v${record.champion_version}\n`);
  return 0;
}

/** A time for --at: ISO 8601 or epoch milliseconds. */
function parseTime(text: string): number {
  const time = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(time)) throw new ConfigError(`--at is an ISO 8601 time or epoch milliseconds, got "${text}"`);
  return time;
}

/** `sluice models history <model> [--at <time>]`: which version served which share of traffic, then or over time. */
export async function historyCommand(
  context: CommandContext,
  name: string,
  options: { readonly at?: string; readonly json?: boolean },
): Promise<number> {
  const reader = await registryReader(context);
  const records = (await readDeployments({ ...reader, topic: `${context.config.topicPrefix}registry.deployments` })).filter(
    (record) => record.model_name === name,
  );
  const times = options.at === undefined ? records.map((record) => record.at) : [parseTime(options.at)];
  const answers = times.map((at) => trafficAt(records, name, at));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(options.at === undefined ? answers : answers[0])}\n`);
    return 0;
  }
  if (answers.length === 0) process.stdout.write(`no deployment records of ${name} yet\n`);
  for (const answer of answers) {
    const shares = answer.shares.map((share) => `v${share.version} ${share.role} ${(share.share * 100).toFixed(1)}%`).join(', ');
    const record = answer.deployment;
    process.stdout.write(
      `${new Date(answer.at).toISOString()}  ${shares || 'no version served'}${record ? `  (${record.strategy} ${record.action} ${record.state} ${record.deployment_id}: ${record.reason})` : ''}\n`,
    );
  }
  return 0;
}
