import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../common/errors.js';
import { avroType, AvroSerde, loadAvsc } from '../schemas/index.js';
import { NonFiniteScoreError } from './errors.js';
import { OnnxScorer, toBatch } from './network.js';
import { IncompatibleModelVersionError } from './guards.js';
import { ArtifactStore, type ModelMetadata, type ModelVersion } from './registry.js';
import { routesToCandidate, type DeploymentRecord } from './rollout.js';

/**
 * A deployed model in memory: its ONNX session behind a micro-batcher (requests wait at most
 * `maxWaitMs` or until `maxBatch` are queued, then run as one onnxruntime call).
 */
export class LoadedModel {
  private queue: { row: readonly (number | null)[]; resolve: (score: number) => void; reject: (error: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(
    readonly version: ModelVersion,
    readonly metadata: ModelMetadata,
    private readonly scorer: OnnxScorer,
    private readonly maxBatch: number,
    private readonly maxWaitMs: number,
    private readonly onBatch?: (size: number) => void,
  ) {}

  /** The row's score; rejects with NonFiniteScoreError when the network's output is NaN or infinite. */
  score(row: readonly (number | null)[]): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ row, resolve, reject });
      if (this.queue.length >= this.maxBatch) this.runBatch();
      // maxWaitMs 0: the batch is whatever the other partitions queued in this turn of the event loop.
      else if (this.maxWaitMs <= 0) this.immediate ??= setImmediate(() => this.runBatch());
      else this.timer ??= setTimeout(() => this.runBatch(), this.maxWaitMs);
    });
  }

  /** Scores the queued rows in one onnxruntime call. */
  private runBatch(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.onBatch?.(batch.length);
    const network = { features: this.metadata.inputs, mean: Float32Array.from(this.metadata.fill), std: new Float32Array(0), layers: [] };
    this.scorer
      .score(
        toBatch(
          network,
          batch.map((entry) => entry.row),
        ),
      )
      .then(
        (scores) => {
          batch.forEach((entry, index) => {
            const score = scores[index] ?? Number.NaN;
            if (Number.isFinite(score)) entry.resolve(score);
            else entry.reject(new NonFiniteScoreError(this.version.name, this.version.version, score));
          });
        },
        (error: unknown) => {
          for (const entry of batch) entry.reject(error);
        },
      );
  }

  async close(): Promise<void> {
    this.runBatch();
    await this.scorer.close();
  }
}

export interface WatcherOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** registry.deployments: when given, rollouts (canary, shadow, blue-green) are followed too. */
  readonly deploymentsTopic?: string;
  readonly registryUrl: string;
  readonly model: string;
  readonly alias?: string;
  readonly artifacts: ArtifactStore;
  readonly maxBatch?: number;
  readonly maxWaitMs?: number;
  readonly logger: Logger;
  readonly onBatch?: (size: number) => void;
  /**
   * Why a version cannot serve today's inputs (see models/guards.ts); a version with problems is
   * refused before any traffic reaches it and the previous one stays in service.
   */
  readonly guard?: (version: ModelVersion, metadata: ModelMetadata) => readonly string[];
}

/** Who answers for one entity: the version, its role, and the rollout that routed it. */
export interface Route {
  readonly model: LoadedModel | undefined;
  readonly role: 'CHAMPION' | 'CANARY';
  readonly deploymentId: string | null;
}

/**
 * Follows registry.models (and registry.deployments) and keeps the version holding the alias
 * (champion) loaded, and the candidate of a running rollout beside it; when the alias moves, the
 * new version is loaded before it replaces the old one (hot reload, no gap). A version that fails
 * to load, or that its guard refuses, is reported and the previous one stays in service.
 */
export class ModelWatcher {
  private loaded: LoadedModel | undefined;
  private previousModel: LoadedModel | undefined;
  private candidateModel: LoadedModel | undefined;
  private rollout: DeploymentRecord | undefined;
  private failure: string | undefined;
  private candidateFailure: string | undefined;
  private consumer: Consumer | undefined;
  private switching: Promise<void> = Promise.resolve();
  private readonly versions = new Map<number, ModelVersion>();

  constructor(private readonly options: WatcherOptions) {}

  /** The model in service, if any. */
  current(): LoadedModel | undefined {
    return this.loaded;
  }

  /** Every version of the model seen on the registry topic, with its aliases as they are now. */
  registered(): readonly ModelVersion[] {
    return [...this.versions.values()].sort((a, b) => a.version - b.version);
  }

  /** The model served before the current one (a fallback when the current one fails). */
  previous(): LoadedModel | undefined {
    return this.previousModel;
  }

  /** The candidate of the running rollout, once loaded. */
  candidate(): LoadedModel | undefined {
    return this.candidateModel;
  }

  /** The model's latest deployment record, as far as it has been read. */
  deployment(): DeploymentRecord | undefined {
    return this.rollout;
  }

  /** Why the aliased version is not in service, when it is not. */
  loadFailure(): string | undefined {
    return this.failure;
  }

  /** Why the rollout's candidate is not loaded, when it is not. */
  candidateLoadFailure(): string | undefined {
    return this.candidateFailure;
  }

  /**
   * Who decides for the entity: the canary when the running canary's hash split puts the entity in
   * its share and the candidate is loaded here, else the champion.
   */
  route(entity: string): Route {
    const rollout = this.rollout;
    const candidate = this.candidateModel;
    if (rollout && candidate && candidate.version.version === rollout.candidate_version && routesToCandidate(rollout, entity))
      return { model: candidate, role: 'CANARY', deploymentId: rollout.deployment_id };
    const live = rollout && (rollout.state === 'RUNNING' || rollout.state === 'PAUSED') && rollout.strategy !== 'DIRECT';
    return { model: this.loaded, role: 'CHAMPION', deploymentId: live ? rollout.deployment_id : null };
  }

  async start(): Promise<void> {
    const serde = new AvroSerde(this.options.registryUrl, avroType(loadAvsc('registry.models')));
    const deployments = new AvroSerde(this.options.registryUrl, avroType(loadAvsc('registry.deployments')));
    this.consumer = this.options.kafka.consumer({ groupId: `sluice-model-watch-${randomUUID()}`, maxWaitTimeInMs: 200 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    if (this.options.deploymentsTopic && (await this.topicExists(this.options.deploymentsTopic)))
      await this.consumer.subscribe({ topic: this.options.deploymentsTopic, fromBeginning: true });
    // A cluster set up before rollouts existed has no registry.deployments: the champion alone serves.
    else if (this.options.deploymentsTopic)
      this.options.logger.warn({ topic: this.options.deploymentsTopic }, 'no deployments topic: rollouts are not followed');
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, message }) => {
        if (!message.value) return;
        if (topic === this.options.deploymentsTopic) {
          const record = (await deployments.decode(message.value)) as DeploymentRecord;
          if (record.model_name !== this.options.model) return;
          this.rollout = record;
        } else {
          const version = (await serde.decode(message.value)) as ModelVersion;
          if (version.name !== this.options.model) return;
          this.versions.set(version.version, version);
        }
        this.switching = this.switching.then(() => this.follow());
        await this.switching;
      },
    });
  }

  private async topicExists(topic: string): Promise<boolean> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      return (await admin.listTopics()).includes(topic);
    } finally {
      await admin.disconnect();
    }
  }

  /** Waits until the alias's version (as far as the registry has been read) is in service or failed. */
  async settled(): Promise<void> {
    await this.switching;
  }

  private async load(wanted: ModelVersion): Promise<LoadedModel> {
    const { onnx, metadata } = await this.options.artifacts.get(wanted.artifact_sha256);
    const problems = this.options.guard?.(wanted, metadata) ?? [];
    if (problems.length > 0) throw new IncompatibleModelVersionError(wanted.name, wanted.version, problems);
    const scorer = await OnnxScorer.load(onnx, metadata.inputs.length);
    return new LoadedModel(wanted, metadata, scorer, this.options.maxBatch ?? 64, this.options.maxWaitMs ?? 0, this.options.onBatch);
  }

  private async follow(): Promise<void> {
    await this.followChampion();
    await this.followCandidate();
  }

  private async followChampion(): Promise<void> {
    const alias = this.options.alias ?? 'champion';
    const wanted = [...this.versions.values()]
      .filter((version) => version.aliases.includes(alias))
      .sort((left, right) => right.version - left.version)[0];
    if (!wanted || wanted.version === this.loaded?.version.version) return;
    try {
      // A candidate becoming champion (a promotion, a blue-green switch) is already loaded and warm.
      const next = this.candidateModel?.version.version === wanted.version ? this.candidateModel : await this.load(wanted);
      if (next === this.candidateModel) this.candidateModel = undefined;
      const retired = this.previousModel;
      this.previousModel = this.loaded;
      this.loaded = next;
      this.failure = undefined;
      this.options.logger.info({ model: wanted.name, version: wanted.version }, 'model version in service');
      await retired?.close();
    } catch (error) {
      this.failure = `version ${wanted.version} failed to load: ${errorMessage(error)}`;
      this.options.logger.error(
        { err: error, model: wanted.name, version: wanted.version },
        'model version failed to load; keeping the previous one',
      );
    }
  }

  private async followCandidate(): Promise<void> {
    const rollout = this.rollout;
    const candidate = rollout && (rollout.state === 'RUNNING' || rollout.state === 'PAUSED') ? rollout.candidate_version : null;
    const wanted = candidate === null ? undefined : this.versions.get(candidate);
    if (wanted?.version === this.candidateModel?.version.version) return;
    const retired = this.candidateModel;
    this.candidateModel = undefined;
    this.candidateFailure = undefined;
    // The retired candidate may be the version just rolled back from: close it unless it serves.
    if (retired && retired !== this.loaded && retired !== this.previousModel) await retired.close();
    if (!wanted) {
      if (candidate !== null) this.candidateFailure = `version ${candidate} is not in the registry (yet)`;
      return;
    }
    try {
      this.candidateModel = wanted.version === this.loaded?.version.version ? this.loaded : await this.load(wanted);
      this.options.logger.info({ model: wanted.name, version: wanted.version, strategy: rollout?.strategy }, 'rollout candidate loaded');
    } catch (error) {
      this.candidateFailure = `candidate version ${wanted.version} failed to load: ${errorMessage(error)}`;
      this.options.logger.error(
        { err: error, model: wanted.name, version: wanted.version },
        'rollout candidate refused; the champion keeps all traffic',
      );
    }
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    await this.switching;
    await this.loaded?.close();
    await this.previousModel?.close();
    if (this.candidateModel !== this.loaded && this.candidateModel !== this.previousModel) await this.candidateModel?.close();
  }
}
