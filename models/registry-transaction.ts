import type { Kafka, RecordMetadata } from 'kafkajs';
import { errorMessage, SluiceError } from '../common/errors.js';
import { AvroSerde } from '../schemas/index.js';

/** A registry record to write: topic, key, registered schema id of the topic's values, value. */
export interface RegistryMessage {
  readonly topic: string;
  readonly key: string;
  readonly schemaId: number;
  readonly value: unknown;
}

export interface ModelTransactionOptions {
  readonly kafka: Kafka;
  readonly registryUrl: string;
  /** Tries before giving up when other writers of the same model keep fencing this one. */
  readonly attempts?: number;
}

/**
 * A read-modify-write of one model's registry records as a compare-and-set through the log. The
 * transactional id names the model, so beginning a transaction fences any other writer of that
 * model (its open transaction is aborted, its commit fails) and waits for its committed records
 * to be readable. `plan` then reads the registry (read_committed) and returns what to write; when
 * another writer fenced this one before the commit, the whole step is retried on a fresh read.
 * So two trainings registering at once get different version numbers, and an alias move and its
 * deployment record land together or not at all.
 *
 * It returns once what it wrote is readable by a read_committed reader (`waitReadable`): the
 * commit's answer comes before the broker has written the commit markers into the partitions, and
 * a registry read meanwhile (a `models list` after `models promote`) saw the records before it.
 */
export async function transactOnModel<T>(
  options: ModelTransactionOptions,
  model: string,
  plan: () => Promise<{ readonly messages: readonly RegistryMessage[]; readonly result: T }>,
): Promise<T> {
  const attempts = options.attempts ?? 10;
  const serde = new AvroSerde(options.registryUrl);
  let last: unknown;
  let committed: { readonly result: T; readonly written: readonly RecordMetadata[] } | undefined;
  for (let attempt = 1; attempt <= attempts && !committed; attempt += 1) {
    const producer = options.kafka.producer({
      transactionalId: `sluice-registry-${model}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 30_000,
    });
    await producer.connect();
    try {
      const transaction = await producer.transaction();
      try {
        const { messages, result } = await plan();
        const topics = [...new Set(messages.map((message) => message.topic))];
        const written: RecordMetadata[] = [];
        for (const topic of topics) {
          const encoded = await Promise.all(
            messages
              .filter((message) => message.topic === topic)
              .map(async (message) => ({ key: message.key, value: await serde.encode(message.schemaId, message.value) })),
          );
          written.push(...(await transaction.send({ topic, acks: -1, messages: encoded })));
        }
        await transaction.commit();
        committed = { result, written };
      } catch (error) {
        await transaction.abort().catch(() => undefined);
        throw error;
      }
    } catch (error) {
      // The plan refused (unknown version, inputs that do not match): retrying cannot help.
      if (error instanceof SluiceError && !error.retriable) throw error;
      last = error;
      // Another writer of this model took over: back off with jitter, then re-read and re-plan.
      await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 50 * 2 ** attempt) * (0.5 + Math.random())));
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
  }
  if (committed) {
    // Outside the tries: a write that committed is never planned again.
    await waitReadable(options.kafka, committed.written);
    return committed.result;
  }
  throw new SluiceError(
    'SLUICE_REGISTRY_CONTENDED',
    `could not write the registry of model ${model} in ${attempts} tries: ${errorMessage(last)}`,
    {
      cause: last,
      retriable: true,
    },
  );
}

/** How long `waitReadable` waits for commit markers; past it, the write stands and the call returns. */
const READABLE_WAIT_MS = 15_000;

/**
 * Waits until each partition written has its last stable offset (the end a read_committed reader
 * reads to) past the first offset written there, so that the transaction's marker is in: a read
 * from then on sees the records. Bounded, and never an error: the records are committed either way.
 */
async function waitReadable(kafka: Kafka, written: readonly RecordMetadata[]): Promise<void> {
  const pending = new Map<string, Map<number, bigint>>();
  for (const { topicName, partition, baseOffset } of written) {
    if (baseOffset === undefined) continue;
    const partitions = pending.get(topicName) ?? new Map<number, bigint>();
    const first = BigInt(baseOffset);
    const known = partitions.get(partition);
    partitions.set(partition, known === undefined || first > known ? first : known);
    pending.set(topicName, partitions);
  }
  if (pending.size === 0) return;
  const admin = kafka.admin();
  const deadline = Date.now() + READABLE_WAIT_MS;
  try {
    await admin.connect();
    for (const [topic, partitions] of pending) {
      for (;;) {
        // kafkajs asks for offsets read_committed (its default): the last stable offset, not the high watermark.
        const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
        const readable = [...partitions].every(([partition, first]) => {
          const found = offsets.find((candidate) => candidate.partition === partition);
          return found !== undefined && BigInt(found.offset) > first;
        });
        if (readable || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  } catch {
    // The admin could not connect: the write stands; a read may briefly not show it.
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
