import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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
  const { retryKafka, waitForTopics } = await import('../kafka/index.js');
  // A fresh topic's metadata can lag behind its creation: retriable, retried (creating it again is a no-op).
  await retryKafka(() =>
    admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: partitions,
          replicationFactor: 1,
          configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
        },
      ],
    }),
  );
  await waitForTopics(admin, [topic]);
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

export interface TopicMessage {
  readonly key: string;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
  readonly partition: number;
  readonly offset: string;
}

/**
 * Every record of a topic up to its end offsets as of now, read_committed (a verifier reads to the
 * end, never "until N records look like enough"): waits for open transactions to settle first.
 * With `uncommitted`, aborted records are read too (evidence that work was interrupted).
 */
export async function readToEnd(
  kafka: Kafka,
  topic: string,
  options: { readonly uncommitted?: boolean; readonly maxBytesPerPartition?: number } = {},
): Promise<TopicMessage[]> {
  const { resolveRanges, readRanges } = await import('../kafka/index.js');
  const ranges = await resolveRanges(kafka, topic);
  const messages: TopicMessage[] = [];
  const collect = (
    partition: number,
    message: { key: Buffer | null; value: Buffer | null; headers?: Record<string, unknown>; offset: string },
  ): void => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(message.headers ?? {})) {
      const first: unknown = Array.isArray(value) ? value[0] : value;
      if (Buffer.isBuffer(first)) headers[name] = first.toString();
      else if (typeof first === 'string') headers[name] = first;
    }
    messages.push({ key: message.key?.toString() ?? '', value: message.value, headers, partition, offset: message.offset });
  };
  if (!options.uncommitted) {
    await readRanges(kafka, topic, ranges, collect, 180_000, options.maxBytesPerPartition);
    return messages;
  }
  const consumer = kafka.consumer({ groupId: uniqueName('raw-reader'), readUncommitted: true, maxWaitTimeInMs: 100 });
  const pending = new Map(ranges.filter((range) => range.to > range.from).map((range) => [range.partition, range.to]));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages)
        if (BigInt(message.offset) < (pending.get(batch.partition) ?? 0n)) collect(batch.partition, message);
      if (BigInt(batch.lastOffset()) + 1n >= (pending.get(batch.partition) ?? 0n)) pending.delete(batch.partition);
      await Promise.resolve();
    },
  });
  try {
    await waitUntil(() => pending.size === 0, 180_000, `${topic} read to its end`);
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

const madeDirs: string[] = [];

/** A folder under the system's temp folder for a test file's data; `removeTempDirs` deletes it. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

/** Deletes the folders `tempDir` made: last in `afterAll`, once nothing uses them any more. */
export async function removeTempDirs(): Promise<void> {
  for (const dir of madeDirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
}
