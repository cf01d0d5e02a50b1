import kafkajs, { type Admin, type ITopicConfig } from 'kafkajs';
import type { Logger } from 'pino';
import { TopicMismatchError } from './errors.js';
import { retryKafka } from './retriable.js';

// kafkajs is CommonJS: its enums come through the default export under Node's ESM loader.
const { ConfigResourceTypes } = kafkajs;

/** A topic as declared: what `ensureTopics` makes true on the cluster. */
export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  /** Defaults to min(3, brokers in the cluster). */
  readonly replicationFactor?: number;
  /** Topic-level configs such as `cleanup.policy` and `retention.ms`. */
  readonly config?: Readonly<Record<string, string>>;
}

export interface EnsureTopicsReport {
  readonly created: readonly string[];
  /** Existing topics whose declared configs were changed to match. */
  readonly reconfigured: readonly string[];
  /** Existing topics given more partitions to match their declaration. */
  readonly repartitioned: readonly string[];
  readonly unchanged: readonly string[];
}

const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

export function validateTopicSpecs(specs: readonly TopicSpec[]): void {
  const seen = new Set<string>();
  for (const spec of specs) {
    if (!TOPIC_NAME.test(spec.name) || spec.name === '.' || spec.name === '..') {
      throw new TopicMismatchError(`"${spec.name}" is not a legal Kafka topic name`);
    }
    if (seen.has(spec.name)) throw new TopicMismatchError(`topic ${spec.name} is declared twice`);
    seen.add(spec.name);
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
      throw new TopicMismatchError(`topic ${spec.name}: partitions must be a positive integer`);
    }
  }
}

/**
 * Makes the cluster match the declarations, idempotently: creates missing topics, raises partition
 * counts that are below the declaration and sets declared configs that differ. It never deletes a
 * topic, never lowers a partition count (Kafka cannot) and leaves undeclared configs alone.
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[], logger?: Logger): Promise<EnsureTopicsReport> {
  validateTopicSpecs(specs);
  const cluster = await admin.describeCluster();
  const defaultReplication = Math.min(3, cluster.brokers.length);
  const existingNames = new Set(await admin.listTopics());

  const missing = specs.filter((spec) => !existingNames.has(spec.name));
  const present = specs.filter((spec) => existingNames.has(spec.name));
  const created: string[] = [];
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map((spec) => ({
      topic: spec.name,
      numPartitions: spec.partitions,
      replicationFactor: spec.replicationFactor ?? defaultReplication,
      configEntries: Object.entries(spec.config ?? {}).map(([name, value]) => ({ name, value })),
    }));
    // createTopics answers false for topics that already exist (a concurrent creator won the race).
    // A fresh topic's metadata can lag behind its creation ("does not host this topic-partition"
    // while kafkajs waits for leaders): retriable, so retried; creating an existing topic is a no-op.
    await retryKafka(() => admin.createTopics({ topics, waitForLeaders: true }));
    created.push(...missing.map((spec) => spec.name));
    await waitForTopics(admin, created);
  }

  const repartitioned: string[] = [];
  const reconfigured: string[] = [];
  if (present.length > 0) {
    const metadata = await admin.fetchTopicMetadata({ topics: present.map((spec) => spec.name) });
    const partitionCounts = new Map(metadata.topics.map((topic) => [topic.name, topic.partitions.length]));
    const grow = present.filter((spec) => (partitionCounts.get(spec.name) ?? 0) < spec.partitions);
    const shrink = present.filter((spec) => (partitionCounts.get(spec.name) ?? 0) > spec.partitions);
    for (const spec of shrink) {
      logger?.warn(
        { topic: spec.name, declared: spec.partitions, actual: partitionCounts.get(spec.name) },
        'topic has more partitions than declared; Kafka cannot lower it, leaving it as it is',
      );
    }
    if (grow.length > 0) {
      await admin.createPartitions({ topicPartitions: grow.map((spec) => ({ topic: spec.name, count: spec.partitions })) });
      repartitioned.push(...grow.map((spec) => spec.name));
    }

    const withConfig = present.filter((spec) => Object.keys(spec.config ?? {}).length > 0);
    if (withConfig.length > 0) {
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: withConfig.map((spec) => ({
          type: ConfigResourceTypes.TOPIC,
          name: spec.name,
          configNames: Object.keys(spec.config ?? {}),
        })),
      });
      const actual = new Map(
        described.resources.map((resource) => [
          resource.resourceName,
          new Map(resource.configEntries.map((entry) => [entry.configName, entry.configValue])),
        ]),
      );
      const drifted = withConfig.filter((spec) =>
        Object.entries(spec.config ?? {}).some(([name, value]) => actual.get(spec.name)?.get(name) !== value),
      );
      if (drifted.length > 0) {
        // AlterConfigs replaces a topic's dynamic configs, so send every declared entry of the topic.
        await admin.alterConfigs({
          validateOnly: false,
          resources: drifted.map((spec) => ({
            type: ConfigResourceTypes.TOPIC,
            name: spec.name,
            configEntries: Object.entries(spec.config ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
        reconfigured.push(...drifted.map((spec) => spec.name));
      }
    }
  }

  const touched = new Set([...repartitioned, ...reconfigured]);
  const unchanged = present.map((spec) => spec.name).filter((name) => !touched.has(name));
  const report = { created, reconfigured, repartitioned, unchanged };
  logger?.info(report, 'topics ensured');
  return report;
}

/**
 * Waits until every topic's metadata answers without error with a leader for each partition: a
 * topic created a moment ago can still be unknown to the broker's metadata cache, and clients
 * that touch it then fail with "does not host this topic-partition".
 */
export async function waitForTopics(admin: Admin, topics: readonly string[], timeoutMs = 60_000): Promise<void> {
  if (topics.length === 0) return;
  await retryKafka(
    async () => {
      const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
      const missing = topics.filter((topic) => {
        const found = metadata.topics.find((candidate) => candidate.name === topic);
        return (
          !found ||
          found.partitions.length === 0 ||
          found.partitions.some((partition) => partition.leader < 0 || partition.partitionErrorCode !== 0)
        );
      });
      if (missing.length > 0) throw Object.assign(new Error(`topics not ready yet: ${missing.join(', ')}`), { retriable: true });
    },
    { timeoutMs, initialDelayMs: 50, maxDelayMs: 500 },
  );
}
