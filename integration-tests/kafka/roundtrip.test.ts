import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { createTopic, testKafka, uniqueName, waitUntil } from '../helpers.js';

const MESSAGES = 100_000;
const KEYS = 1_000;
const PARTITIONS = 6;

describe('kafkajs against the real local broker', () => {
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  it(`moves ${MESSAGES} keyed messages through a ${PARTITIONS}-partition topic: none lost, none duplicated, per-key order kept`, async () => {
    const topic = uniqueName('roundtrip');
    await createTopic(admin, topic, PARTITIONS);

    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const nextSequence = new Array<number>(KEYS).fill(0);
    const batchSize = 5_000;
    for (let start = 0; start < MESSAGES; start += batchSize) {
      const messages = [];
      for (let i = start; i < Math.min(MESSAGES, start + batchSize); i++) {
        const key = i % KEYS;
        const sequence = nextSequence[key]!;
        nextSequence[key] = sequence + 1;
        messages.push({ key: `key-${key}`, value: `${key}:${sequence}` });
      }
      await producer.send({ topic, acks: -1, messages });
    }
    await producer.disconnect();

    const seen = new Set<string>();
    const lastSequence = new Map<string, number>();
    const partitionsOfKey = new Map<string, Set<number>>();
    let received = 0;
    let duplicates = 0;
    let outOfOrder = 0;
    const consumer = kafka.consumer({ groupId: uniqueName('roundtrip-group') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const key = message.key?.toString() ?? '';
          const value = message.value?.toString() ?? '';
          const sequence = Number(value.split(':')[1]);
          received++;
          if (seen.has(value)) duplicates++;
          seen.add(value);
          if (sequence !== (lastSequence.get(key) ?? -1) + 1) outOfOrder++;
          lastSequence.set(key, sequence);
          const partitions = partitionsOfKey.get(key) ?? new Set<number>();
          partitions.add(batch.partition);
          partitionsOfKey.set(key, partitions);
        }
        await Promise.resolve();
      },
    });
    try {
      await waitUntil(() => received >= MESSAGES, 120_000, `${MESSAGES} messages (received ${received})`);
      // Anything past the expected count would be a duplicate; give it a moment to show up.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    } finally {
      await consumer.disconnect();
    }

    expect(received).toBe(MESSAGES);
    expect(duplicates).toBe(0);
    expect(seen.size).toBe(MESSAGES);
    expect(outOfOrder).toBe(0);
    expect(lastSequence.size).toBe(KEYS);
    for (let key = 0; key < KEYS; key++) expect(lastSequence.get(`key-${key}`)).toBe(nextSequence[key]! - 1);
    // A key lives in exactly one partition, and the keys spread over all of them.
    expect([...partitionsOfKey.values()].every((partitions) => partitions.size === 1)).toBe(true);
    expect(new Set([...partitionsOfKey.values()].map((partitions) => [...partitions][0])).size).toBe(PARTITIONS);
  });
});
