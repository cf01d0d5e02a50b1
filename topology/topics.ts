import type { TopicSpec } from '../kafka/index.js';

/** How the platform's topics are laid out on a cluster. */
export interface TopicLayout {
  /** Prepended to every topic name (SLUICE_TOPIC_PREFIX), e.g. `staging.`. */
  readonly prefix: string;
  /** Partitions of data topics (SLUICE_PARTITIONS). */
  readonly partitions: number;
}

const COMPACT = { 'cleanup.policy': 'compact' } as const;
const WEEK_MS = String(7 * 24 * 60 * 60 * 1000);
const MONTH_MS = String(30 * 24 * 60 * 60 * 1000);

/**
 * The topics of ARCHITECTURE.md that exist whatever the user defines: dead letters, monitoring,
 * registries and schema storage. Per-source, per-view and per-model topics are added by the
 * topology as those definitions arrive.
 */
export function platformTopics(layout: TopicLayout): TopicSpec[] {
  const name = (topic: string): string => `${layout.prefix}${topic}`;
  return [
    { name: name('dlq'), partitions: layout.partitions, config: { 'retention.ms': MONTH_MS } },
    ...['quality', 'drift', 'performance', 'alerts', 'actions', 'lag', 'shadow'].map((kind) => ({
      name: name(`monitoring.${kind}`),
      partitions: layout.partitions,
      config: { 'retention.ms': MONTH_MS },
    })),
    // Registries are rebuilt by replaying them: compacted, one partition for one global order.
    ...['features', 'models', 'experiments', 'deployments', 'readiness'].map((kind) => ({
      name: name(`registry.${kind}`),
      partitions: 1,
      config: COMPACT,
    })),
    { name: name('_schemas'), partitions: 1, config: COMPACT },
  ];
}

/** Topics of one source: what producers write and what ingest emits. */
export function sourceTopics(source: string, layout: TopicLayout): TopicSpec[] {
  return [
    { name: `${layout.prefix}raw.${source}`, partitions: layout.partitions, config: { 'retention.ms': WEEK_MS } },
    { name: `${layout.prefix}events.${source}`, partitions: layout.partitions, config: { 'retention.ms': '-1' } },
  ];
}

/** The topic of one feature view: its rows, keyed by entity (recomputable from events by replay). */
export function featureTopics(view: string, layout: TopicLayout): TopicSpec[] {
  return [{ name: `${layout.prefix}features.${view}`, partitions: layout.partitions, config: { 'retention.ms': MONTH_MS } }];
}

/** The topics of one model's predictions, keyed by entity: the decisions, and a shadow version's scores. */
export function predictionTopics(model: string, layout: TopicLayout): TopicSpec[] {
  return [`predictions.${model}`, `predictions.${model}.shadow`].map((topic) => ({
    name: `${layout.prefix}${topic}`,
    partitions: layout.partitions,
    config: { 'retention.ms': MONTH_MS },
  }));
}
