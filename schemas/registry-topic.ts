import kafkajs, { type Kafka } from 'kafkajs';
import { readRanges, resolveRanges, retryKafka } from '../kafka/index.js';
import { loadAvsc } from './catalog.js';
import { AvroSerde, avroType } from './serde.js';

const { Partitioners } = kafkajs;

/**
 * The registries (`registry.features`, `registry.models`, `registry.experiments`) are compacted,
 * single-partition topics of Avro records keyed `name:version` (or a run id): the log is their
 * truth and replaying it rebuilds them. One reader and one publisher serve all of them.
 */
export interface RegistryTopic {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly registryUrl: string;
  /** The contract the values are read with: `registry.models` for schemas/avro/registry.models.avsc. */
  readonly contract: string;
}

/** Every key's latest value, in the order keys were first published (a tombstone removes a key). */
export async function readRegistryTopic<T>(registry: RegistryTopic): Promise<Map<string, T>> {
  const serde = new AvroSerde(registry.registryUrl, avroType(loadAvsc(registry.contract)));
  const records = new Map<string, T>();
  const ranges = await resolveRanges(registry.kafka, registry.topic);
  await readRanges(registry.kafka, registry.topic, ranges, async (_partition, message) => {
    if (!message.key) return;
    const key = message.key.toString();
    if (message.value === null) records.delete(key);
    else records.set(key, (await serde.decode(message.value)) as T);
  });
  return records;
}

/**
 * Publishes records (acks=all, idempotent producer) with the registered schema id of the topic's
 * values. Retriable failures (a fresh topic's leader not ready, a leader move) are sent again with
 * backoff: the topic is keyed and read back by key, so a record that landed twice reads once.
 */
export async function publishToRegistryTopic(
  registry: RegistryTopic,
  schemaId: number,
  records: readonly { readonly key: string; readonly value: unknown }[],
): Promise<void> {
  if (records.length === 0) return;
  const serde = new AvroSerde(registry.registryUrl);
  const messages = await Promise.all(
    records.map(async (record) => ({ key: record.key, value: await serde.encode(schemaId, record.value) })),
  );
  const producer = registry.kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await retryKafka(() => producer.send({ topic: registry.topic, acks: -1, messages }));
  } finally {
    await producer.disconnect();
  }
}
