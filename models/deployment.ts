import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../common/errors.js';
import { avroType, AvroSerde, loadAvsc } from '../schemas/index.js';
import { NonFiniteScoreError } from './errors.js';
import { OnnxScorer, toBatch } from './network.js';
import { ArtifactStore, type ModelMetadata, type ModelVersion } from './registry.js';

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
  readonly registryUrl: string;
  readonly model: string;
  readonly alias?: string;
  readonly artifacts: ArtifactStore;
  readonly maxBatch?: number;
  readonly maxWaitMs?: number;
  readonly logger: Logger;
  readonly onBatch?: (size: number) => void;
}

/**
 * Follows registry.models and keeps the version holding the alias (champion) loaded; when the
 * alias moves, the new version is loaded before it replaces the old one (hot reload, no gap). A
 * version that fails to load is reported and the previous one stays in service.
 */
export class ModelWatcher {
  private loaded: LoadedModel | undefined;
  private previousModel: LoadedModel | undefined;
  private failure: string | undefined;
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

  /** Why the aliased version is not in service, when it is not. */
  loadFailure(): string | undefined {
    return this.failure;
  }

  async start(): Promise<void> {
    const serde = new AvroSerde(this.options.registryUrl, avroType(loadAvsc('registry.models')));
    this.consumer = this.options.kafka.consumer({ groupId: `sluice-model-watch-${randomUUID()}`, maxWaitTimeInMs: 200 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        const version = (await serde.decode(message.value)) as ModelVersion;
        if (version.name !== this.options.model) return;
        this.versions.set(version.version, version);
        this.switching = this.switching.then(() => this.follow());
        await this.switching;
      },
    });
  }

  /** Waits until the alias's version (as far as the registry has been read) is in service or failed. */
  async settled(): Promise<void> {
    await this.switching;
  }

  private async follow(): Promise<void> {
    const alias = this.options.alias ?? 'champion';
    const wanted = [...this.versions.values()]
      .filter((version) => version.aliases.includes(alias))
      .sort((left, right) => right.version - left.version)[0];
    if (!wanted || wanted.version === this.loaded?.version.version) return;
    try {
      const { onnx, metadata } = await this.options.artifacts.get(wanted.artifact_sha256);
      const scorer = await OnnxScorer.load(onnx, metadata.inputs.length);
      const next = new LoadedModel(
        wanted,
        metadata,
        scorer,
        this.options.maxBatch ?? 64,
        this.options.maxWaitMs ?? 0,
        this.options.onBatch,
      );
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

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    await this.switching;
    await this.loaded?.close();
    await this.previousModel?.close();
  }
}
