import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { publishToRegistryTopic, readRegistryTopic } from '../../schemas/index.js';
import { featureNames, type FeatureView } from '../../topology/features.js';

/** One version of a view's definition as registry.features holds it (registry.features.avsc). */
export interface FeatureDefinitionRecord {
  readonly name: string;
  readonly version: number;
  readonly definition_hash: string;
  readonly entity: string;
  readonly source: string;
  readonly window: {
    readonly kind: 'TUMBLING' | 'HOPPING' | 'SLIDING' | 'SESSION';
    readonly size_ms: number;
    readonly advance_ms: number | null;
    readonly grace_ms: number;
  };
  readonly features: readonly {
    readonly name: string;
    readonly aggregation: string;
    readonly field: string | null;
    readonly expression: string | null;
  }[];
  readonly ttl_ms: number | null;
  readonly online: boolean;
  readonly owner: string;
  readonly description: string;
  readonly created_at: number;
}

/** The registry's record for a view at a version. */
export function definitionRecord(view: FeatureView, version: number, createdAt: number): FeatureDefinitionRecord {
  const window = view.window;
  return {
    name: view.name,
    version,
    definition_hash: view.hash,
    entity: view.entity,
    source: view.source.name,
    window: {
      kind:
        window.kind === 'sliding' ? 'SLIDING' : window.kind === 'tumbling' ? 'TUMBLING' : window.kind === 'hopping' ? 'HOPPING' : 'SESSION',
      size_ms: window.kind === 'session' ? window.gapMs : window.sizeMs,
      advance_ms: window.kind === 'hopping' ? window.advanceMs : null,
      grace_ms: view.graceMs,
    },
    features: featureNames(view).map((name) => {
      const spec = view.features[name];
      return spec
        ? { name, aggregation: spec.kind, field: spec.field ?? null, expression: null }
        : { name, aggregation: 'derived', field: null, expression: view.derive?.toString() ?? null };
    }),
    ttl_ms: view.ttlMs ?? null,
    online: view.online,
    owner: view.owner,
    description: view.description,
    created_at: createdAt,
  };
}

/** Every definition version published so far, in publication order (replaying registry.features). */
export async function readFeatureRegistry(kafka: Kafka, topic: string, registryUrl: string): Promise<FeatureDefinitionRecord[]> {
  return [...(await readRegistryTopic<FeatureDefinitionRecord>({ kafka, topic, registryUrl, contract: 'registry.features' })).values()];
}

export interface PublishOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly registryUrl: string;
  /** The registered schema id of registry.features values. */
  readonly schemaId: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

/**
 * Publishes the views' definitions to registry.features and returns each view's version: the
 * version whose hash matches the definition, or a new version (the highest so far + 1) when the
 * definition changed. Keys are `name:version`, so re-publishing the same definition is a no-op.
 */
export async function publishFeatureViews(views: readonly FeatureView[], options: PublishOptions): Promise<Map<string, number>> {
  const existing = await readFeatureRegistry(options.kafka, options.topic, options.registryUrl);
  const versions = new Map<string, number>();
  const messages: { key: string; value: FeatureDefinitionRecord }[] = [];
  for (const view of views) {
    const published = existing.filter((record) => record.name === view.name);
    const same = published.find((record) => record.definition_hash === view.hash);
    if (same) {
      versions.set(view.name, same.version);
      continue;
    }
    const version = Math.max(0, ...published.map((record) => record.version)) + 1;
    versions.set(view.name, version);
    messages.push({ key: `${view.name}:${version}`, value: definitionRecord(view, version, (options.now ?? Date.now)()) });
    options.logger.info(
      { view: view.name, version, hash: view.hash },
      published.length > 0 ? 'feature view changed: new version' : 'feature view registered',
    );
  }
  await publishToRegistryTopic(
    { kafka: options.kafka, topic: options.topic, registryUrl: options.registryUrl, contract: 'registry.features' },
    options.schemaId,
    messages,
  );
  return versions;
}
