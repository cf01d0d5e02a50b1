import { randomUUID } from 'node:crypto';
import { Partitioners, type Consumer, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../common/errors.js';
import { avroType, AvroSerde, loadAvsc } from '../schemas/index.js';
import { NonFiniteScoreError } from './errors.js';
import { OnnxScorer, toBatch } from './network.js';
import { IncompatibleModelVersionError } from './guards.js';
import { rowFor } from './encoding.js';
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
  /** onnxruntime calls under way: closing waits for them (a retired version finishes what it was given). */
  private readonly inflight = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;

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
    if (this.closing) return Promise.reject(new Error(`version ${this.version.version} of ${this.version.name} was retired`));
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
    const call = this.scorer
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
    this.inflight.add(call);
    void call.finally(() => this.inflight.delete(call));
  }

  /** Scores what is queued, waits for the calls under way, then releases the session; once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.runBatch();
      await Promise.allSettled([...this.inflight]);
      await this.scorer.close();
    })();
    return this.closing;
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
  /**
   * registry.readiness: when given, every rollout candidate loaded here is warmed on the latest
   * events' inputs and this instance reports it ready (or why not) there; a blue-green switch waits
   * for every live instance's report.
   */
  readonly readiness?: { readonly topic: string; readonly schemaId: number };
  /** Prepended to this watcher's consumer group (the topic prefix): instances of one stack are found by it. */
  readonly groupPrefix?: string;
}

/** The consumer group of a model's watcher in one instance: `<prefix>sluice-model-watch:<model>:<uuid>`. */
export function watcherGroup(prefix: string, model: string, instance: string = randomUUID()): string {
  return `${prefix}sluice-model-watch:${model}:${instance}`;
}

/** Whether a consumer group is the watcher of this model in some instance of the stack with this prefix. */
export function isWatcherGroup(group: string, prefix: string, model: string): boolean {
  const head = `${prefix}sluice-model-watch:${model}:`;
  return group.startsWith(head) && /^[0-9a-f-]{36}$/.test(group.slice(head.length));
}

/** How many recent events' inputs a watcher keeps to warm a candidate on. */
const WARM_ROWS = 64;

/** The inputs of one event, as predictions build rows from them. */
interface RecentInputs {
  readonly values: Readonly<Record<string, number | null>>;
  readonly categories: Readonly<Record<string, string | null>>;
}

/** A running shadow rollout's version, loaded here. */
export interface Shadowing {
  readonly model: LoadedModel;
  readonly deploymentId: string;
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
  private readonly recent: RecentInputs[] = [];
  private readinessSerde: AvroSerde | undefined;
  private reportedFor: string | undefined;
  private failedAttempt: string | undefined;
  private lastCandidateFailure: string | undefined;
  private producer: Producer | undefined;
  /** This instance's consumer group: its name in readiness reports. */
  readonly group: string;

  constructor(private readonly options: WatcherOptions) {
    this.group = watcherGroup(options.groupPrefix ?? '', options.model);
  }

  /** Remembers one event's complete inputs (the latest few are kept): a candidate is warmed on them. */
  remember(values: Readonly<Record<string, number | null>>, categories: Readonly<Record<string, string | null>>): void {
    this.recent.push({ values, categories });
    if (this.recent.length > WARM_ROWS) this.recent.shift();
  }

  /** The running shadow rollout's version, when one runs and its version is loaded here. */
  shadow(): Shadowing | undefined {
    const rollout = this.rollout;
    const candidate = this.candidateModel;
    if (
      rollout?.strategy !== 'SHADOW' ||
      (rollout.state !== 'RUNNING' && rollout.state !== 'PAUSED') ||
      !candidate ||
      candidate.version.version !== rollout.candidate_version
    )
      return undefined;
    return { model: candidate, deploymentId: rollout.deployment_id };
  }

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
    this.consumer = this.options.kafka.consumer({ groupId: this.group, maxWaitTimeInMs: 200 });
    // A cluster set up before blue-green existed has no registry.readiness: nothing is reported.
    if (this.options.readiness && (await this.topicExists(this.options.readiness.topic))) {
      this.producer = this.options.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await this.producer.connect();
    } else if (this.options.readiness)
      this.options.logger.warn({ topic: this.options.readiness.topic }, 'no readiness topic: rollout readiness is not reported');
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    if (this.options.deploymentsTopic && (await this.topicExists(this.options.deploymentsTopic)))
      await this.consumer.subscribe({ topic: this.options.deploymentsTopic, fromBeginning: true });
    // A cluster set up before rollouts existed has no registry.deployments: the champion alone serves.
    else if (this.options.deploymentsTopic)
      this.options.logger.warn({ topic: this.options.deploymentsTopic }, 'no deployments topic: rollouts are not followed');
    await this.consumer.run({
      autoCommit: false,
      // A batch's records are taken in, then followed once: replaying the registries at start-up
      // loads today's champion and rollout, not every one the log has seen.
      eachBatch: async (payload) => {
        const { batch } = payload;
        let changed = false;
        for (const message of batch.messages) {
          if (!message.value) continue;
          if (batch.topic === this.options.deploymentsTopic) {
            const record = (await deployments.decode(message.value)) as DeploymentRecord;
            if (record.model_name !== this.options.model) continue;
            this.rollout = record;
          } else {
            const version = (await serde.decode(message.value)) as ModelVersion;
            if (version.name !== this.options.model) continue;
            this.versions.set(version.version, version);
          }
          changed = true;
        }
        if (!changed) return;
        // A failed follow is logged and the next batch follows again: the chain never stays rejected.
        this.switching = this.switching
          .then(() => this.follow())
          .catch((error: unknown) => this.options.logger.error({ err: error, model: this.options.model }, 'following the registry failed'));
        await this.switching;
        await payload.heartbeat();
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

  /** Closes a version no slot holds any more (a version can sit in two: champion and candidate). */
  private async retire(model: LoadedModel | undefined): Promise<void> {
    if (!model || model === this.loaded || model === this.previousModel || model === this.candidateModel) return;
    await model
      .close()
      .catch((error: unknown) =>
        this.options.logger.warn(
          { err: error, model: this.options.model, version: model.version.version },
          'closing a retired version failed',
        ),
      );
  }

  private async followChampion(): Promise<void> {
    const alias = this.options.alias ?? 'champion';
    const wanted = [...this.versions.values()]
      .filter((version) => version.aliases.includes(alias))
      .sort((left, right) => right.version - left.version)[0];
    if (!wanted || wanted.version === this.loaded?.version.version) return;
    let next: LoadedModel;
    try {
      // A candidate becoming champion (a promotion, a blue-green switch) is already loaded and warm;
      // so is the version before (a switch back): the two swap places, nothing loads or closes.
      next =
        this.candidateModel?.version.version === wanted.version
          ? this.candidateModel
          : this.previousModel?.version.version === wanted.version
            ? this.previousModel
            : await this.load(wanted);
    } catch (error) {
      this.failure = `version ${wanted.version} failed to load: ${errorMessage(error)}`;
      this.options.logger.error(
        { err: error, model: wanted.name, version: wanted.version },
        'model version failed to load; keeping the previous one',
      );
      return;
    }
    if (next === this.candidateModel) this.candidateModel = undefined;
    const retired = this.previousModel;
    this.previousModel = this.loaded;
    this.loaded = next;
    this.failure = undefined;
    this.options.logger.info({ model: wanted.name, version: wanted.version }, 'model version in service');
    await this.retire(retired);
  }

  private async followCandidate(): Promise<void> {
    const rollout = this.rollout;
    const live = rollout?.state === 'RUNNING' || rollout?.state === 'PAUSED';
    const candidate = live ? rollout.candidate_version : null;
    // A rollout that ended promoting its candidate (a canary's PROMOTE, a blue-green SWITCH) can be
    // read before the alias records of its transaction: the warm candidate waits for them.
    if (
      !live &&
      rollout?.state === 'PROMOTED' &&
      this.candidateModel !== undefined &&
      this.candidateModel.version.version === rollout.champion_version &&
      this.loaded?.version.version !== rollout.champion_version
    )
      return;
    const wanted = candidate === null ? undefined : this.versions.get(candidate);
    if (wanted?.version === this.candidateModel?.version.version) {
      if (rollout && wanted && live && this.reportedFor !== rollout.deployment_id) await this.report(rollout, wanted.version, 0);
      return;
    }
    const retired = this.candidateModel;
    this.candidateModel = undefined;
    this.candidateFailure = undefined;
    // The retired candidate may be the version just rolled back from: closed unless it serves.
    await this.retire(retired);
    if (!wanted || !rollout) {
      if (candidate !== null) this.candidateFailure = `version ${candidate} is not in the registry (yet)`;
      return;
    }
    // A candidate that failed here is not tried again for the same rollout on every later record.
    const attempt = `${rollout.deployment_id}:${wanted.version}`;
    if (this.failedAttempt === attempt) {
      this.candidateFailure = this.lastCandidateFailure;
      return;
    }
    let checked = 0;
    let loaded: LoadedModel | undefined;
    try {
      loaded =
        wanted.version === this.loaded?.version.version
          ? this.loaded
          : wanted.version === this.previousModel?.version.version
            ? this.previousModel
            : await this.load(wanted);
      checked = await this.warm(loaded);
      this.candidateModel = loaded;
      this.options.logger.info(
        { model: wanted.name, version: wanted.version, strategy: rollout.strategy, warmedOn: checked },
        'rollout candidate loaded and warmed',
      );
    } catch (error) {
      this.candidateFailure = `candidate version ${wanted.version} failed to load or warm: ${errorMessage(error)}`;
      this.failedAttempt = attempt;
      this.lastCandidateFailure = this.candidateFailure;
      await this.retire(loaded);
      this.options.logger.error(
        { err: error, model: wanted.name, version: wanted.version },
        'rollout candidate refused; the champion keeps all traffic',
      );
    }
    await this.report(rollout, wanted.version, checked);
  }

  /**
   * Warms a candidate: scores the latest events' inputs (or, before any event, one row of its
   * training means) and requires a finite score for each. Returns the rows checked.
   */
  private async warm(candidate: LoadedModel): Promise<number> {
    const rows =
      this.recent.length > 0
        ? this.recent.map(({ values, categories }) => rowFor(candidate.metadata.inputs, candidate.metadata.categorical, values, categories))
        : [candidate.metadata.inputs.map(() => null)];
    await Promise.all(rows.map((row) => candidate.score(row)));
    return rows.length;
  }

  /** Reports this instance's readiness for the rollout's candidate to registry.readiness. */
  private async report(rollout: DeploymentRecord, version: number, checked: number): Promise<void> {
    const readiness = this.options.readiness;
    if (!readiness || !this.producer) return;
    const record = {
      deployment_id: rollout.deployment_id,
      model_name: this.options.model,
      version,
      instance: this.group,
      ready: this.candidateModel?.version.version === version,
      rows_checked: checked,
      error: this.candidateFailure ?? null,
      at: Date.now(),
    };
    try {
      this.readinessSerde ??= new AvroSerde(this.options.registryUrl, avroType(loadAvsc('registry.readiness')));
      await this.producer.send({
        topic: readiness.topic,
        acks: -1,
        messages: [{ key: `${rollout.deployment_id}:${this.group}`, value: await this.readinessSerde.encode(readiness.schemaId, record) }],
      });
      this.reportedFor = rollout.deployment_id;
    } catch (error) {
      // Serving goes on; the next record of the rollout reports again (a blue-green waits, or times out).
      this.options.logger.warn({ err: error, deployment: rollout.deployment_id }, 'could not report rollout readiness');
    }
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    await this.switching;
    await this.producer?.disconnect().catch(() => undefined);
    const held = new Set([this.loaded, this.previousModel, this.candidateModel].filter((model) => model !== undefined));
    await Promise.allSettled([...held].map((model) => model.close()));
  }
}
