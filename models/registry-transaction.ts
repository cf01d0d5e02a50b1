import type { Kafka } from 'kafkajs';
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
 */
export async function transactOnModel<T>(
  options: ModelTransactionOptions,
  model: string,
  plan: () => Promise<{ readonly messages: readonly RegistryMessage[]; readonly result: T }>,
): Promise<T> {
  const attempts = options.attempts ?? 10;
  const serde = new AvroSerde(options.registryUrl);
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
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
        for (const topic of topics) {
          const encoded = await Promise.all(
            messages
              .filter((message) => message.topic === topic)
              .map(async (message) => ({ key: message.key, value: await serde.encode(message.schemaId, message.value) })),
          );
          await transaction.send({ topic, acks: -1, messages: encoded });
        }
        await transaction.commit();
        return result;
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
  throw new SluiceError(
    'SLUICE_REGISTRY_CONTENDED',
    `could not write the registry of model ${model} in ${attempts} tries: ${errorMessage(last)}`,
    {
      cause: last,
      retriable: true,
    },
  );
}
