export { ensureKafkaDistribution, type KafkaDistribution } from './jars.js';
export { startLocalBroker, type LocalBroker, type LocalBrokerOptions } from './broker.js';
export {
  createKafka,
  describeCluster,
  waitForKafka,
  kafkaClientMetrics,
  registerKafkaClientMetrics,
  type ClusterInfo,
  type KafkaClientOptions,
} from './client.js';
export { ensureTopics, validateTopicSpecs, type TopicSpec, type EnsureTopicsReport } from './topics.js';
export { checkJava, checkMaven, parseJavaMajor } from './prerequisites.js';
export { startEphemeralKafka, type EphemeralKafka } from './ephemeral.js';
export { readRanges, resolveRanges, TopicRangeError, type PartitionRange, type RangeBounds } from './topic-range.js';
export { isRetriableKafkaError, retryKafka, type KafkaRetryOptions } from './retriable.js';
export * from './errors.js';
