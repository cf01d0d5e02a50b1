import type { Kafka } from 'kafkajs';
import { waitUntil } from '../helpers.js';

export interface ConsumedMessage {
  readonly key: string;
  readonly value: string;
  readonly headers: Record<string, string>;
  readonly partition: number;
  readonly offset: string;
}

/** Reads a topic from the start with read_committed until `until` holds or the timeout passes. */
export async function readTopic(
  kafka: Kafka,
  topic: string,
  until: (messages: ConsumedMessage[]) => boolean,
  timeoutMs: number,
  settleMs = 1_000,
): Promise<ConsumedMessage[]> {
  const messages: ConsumedMessage[] = [];
  const consumer = kafka.consumer({
    groupId: `reader-${topic}-${Math.random().toString(36).slice(2)}`,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(Array.isArray(value) ? value[0] : value);
        messages.push({
          key: message.key?.toString() ?? '',
          value: message.value?.toString() ?? '',
          headers,
          partition: batch.partition,
          offset: message.offset,
        });
      }
      await Promise.resolve();
    },
  });
  try {
    await waitUntil(() => until(messages), timeoutMs, `${topic} to satisfy the reader`);
    // Anything past the expected count would be a duplicate; give it a moment to show up.
    await new Promise((resolve) => setTimeout(resolve, settleMs));
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

/** Produces `count` keyed records `value-<i>` in batches. */
export async function produceNumbered(kafka: Kafka, topic: string, count: number, keys = 100, batch = 5_000, first = 0): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let start = first; start < first + count; start += batch) {
    const messages = [];
    for (let i = start; i < Math.min(first + count, start + batch); i++) messages.push({ key: `k${i % keys}`, value: `value-${i}` });
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
}
