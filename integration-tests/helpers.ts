import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka } from '../kafka/index.js';

/** A kafkajs client on the shared test broker. */
export function testKafka(clientId = 'sluice-it'): Kafka {
  return createKafka({ brokers: inject('brokers'), clientId });
}

/** A topic or group name no other test uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function createTopic(admin: Admin, topic: string, partitions: number, config: Record<string, string> = {}): Promise<void> {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: partitions,
        replicationFactor: 1,
        configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
      },
    ],
  });
}

/** Resolves once `done()` holds, polling; rejects with `what` after timeoutMs. */
export async function waitUntil(done: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Records of a topic the group has not committed yet: 0 once everything is processed. */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [committed, ends] = await Promise.all([admin.fetchOffsets({ groupId, topics: [topic] }), admin.fetchTopicOffsets(topic)]);
  const byPartition = new Map(committed[0]?.partitions.map((entry) => [entry.partition, Number(entry.offset)]) ?? []);
  return ends.reduce((sum, end) => sum + Number(end.high) - Math.max(0, byPartition.get(end.partition) ?? 0), 0);
}
