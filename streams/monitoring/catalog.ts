import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import { ArtifactStore, readModelRegistry, type ModelVersion } from '../../models/registry.js';
import { layoutOf, parseReference, type ModelReference, type SummaryLayout } from '../../monitoring/index.js';
import { MonitoringError } from './errors.js';

/**
 * What the monitoring stages know about model versions: registry.models (the version's training
 * metrics, its artifact) and the artifact's drift reference (model.json). Versions are immutable,
 * so each is read once; an unknown version makes the registry be read again (inference only scores
 * with registered versions: the registry has it, this process has not read it yet).
 */
export interface CatalogOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly registryUrl: string;
  readonly artifacts: ArtifactStore;
  readonly logger: Logger;
  /** KLL k of window sketches (layouts are built with it). */
  readonly sketchK: number;
}

export interface ModelCatalogApi {
  version(model: string, version: number): Promise<ModelVersion | undefined>;
  reference(model: string, version: number): Promise<ModelReference | undefined>;
  layout(model: string, version: number): Promise<SummaryLayout>;
}

export class ModelCatalog implements ModelCatalogApi {
  private versions = new Map<string, ModelVersion>();
  private readonly references = new Map<string, Promise<ModelReference | undefined>>();
  private readonly layouts = new Map<string, Promise<SummaryLayout>>();
  private refreshing: Promise<void> | undefined;
  private refreshedAt = 0;

  constructor(private readonly options: CatalogOptions) {}

  /** A registered version (undefined for version 0: predictions made without a model). */
  async version(model: string, version: number): Promise<ModelVersion | undefined> {
    if (version <= 0) return undefined;
    const key = `${model}:${version}`;
    let found = this.versions.get(key);
    if (!found) {
      await this.refresh();
      found = this.versions.get(key);
    }
    if (!found)
      throw new MonitoringError('SLUICE_UNKNOWN_MODEL_VERSION', `model ${model} has no version ${version} in the registry (yet)`, {
        retriable: true,
      });
    return found;
  }

  /** The version's drift reference; undefined when it has none (no model, an artifact from before references, or an artifact not on this machine). */
  reference(model: string, version: number): Promise<ModelReference | undefined> {
    const key = `${model}:${version}`;
    let reference = this.references.get(key);
    if (!reference) {
      reference = this.load(model, version);
      this.references.set(key, reference);
      // A transient failure (the registry unreachable) is not remembered.
      reference.catch(() => this.references.delete(key));
    }
    return reference;
  }

  layout(model: string, version: number): Promise<SummaryLayout> {
    const key = `${model}:${version}`;
    let layout = this.layouts.get(key);
    if (!layout) {
      layout = this.reference(model, version).then((reference) => layoutOf(reference, this.options.sketchK));
      this.layouts.set(key, layout);
      layout.catch(() => this.layouts.delete(key));
    }
    return layout;
  }

  private async load(model: string, version: number): Promise<ModelReference | undefined> {
    const registered = await this.version(model, version);
    if (!registered) return undefined;
    try {
      const { metadata } = await this.options.artifacts.get(registered.artifact_sha256);
      return parseReference(metadata.reference);
    } catch (error) {
      this.options.logger.warn(
        { model, version, artifact: registered.artifact_sha256, error: errorMessage(error) },
        'the model artifact is not readable here: its drift is reported without a reference',
      );
      return undefined;
    }
  }

  private async refresh(): Promise<void> {
    // Concurrent misses share one read; reads are at least a second apart.
    this.refreshing ??= (async () => {
      const wait = this.refreshedAt + 1_000 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const all = await readModelRegistry({ kafka: this.options.kafka, topic: this.options.topic, registryUrl: this.options.registryUrl });
      this.versions = new Map(all.map((entry) => [`${entry.name}:${entry.version}`, entry]));
      this.refreshedAt = Date.now();
    })().finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
  }
}
