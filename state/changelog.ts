import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { StateStoreError } from './errors.js';

/** The compacted topic that makes a store durable: `<prefix><group>-<store>-changelog`. */
export function changelogTopicName(prefix: string, groupId: string, store: string, inputTopic?: string): string {
  return `${prefix}${groupId}-${store}${inputTopic ? `-${inputTopic}` : ''}-changelog`;
}

export interface RestoreProgress {
  readonly records: number;
  readonly endOffset: string;
  readonly seconds: number;
}

/**
 * Reads one changelog partition from `fromOffset` up to its end (the high watermark when the
 * restore starts), committed records only, calling `apply` for each in offset order.
 * kafkajs has no manual assignment, so a throw-away consumer group subscribes, pauses every
 * other partition and seeks this one; batches of only transaction markers are noticed through
 * the END_BATCH_PROCESS event, so the end is found even when the log ends with a marker.
 */
export async function readChangelogPartition(
  kafka: Kafka,
  topic: string,
  partition: number,
  fromOffset: bigint,
  apply: (key: Buffer | null, value: Buffer | null, offset: string) => Promise<void>,
  timeoutMs = 600_000,
): Promise<RestoreProgress> {
  const started = performance.now();
  const admin = kafka.admin();
  await admin.connect();
  let end: bigint;
  let low: bigint;
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const entry = offsets.find((candidate) => candidate.partition === partition);
    end = BigInt(entry?.high ?? '0');
    low = BigInt(entry?.low ?? '0');
  } finally {
    await admin.disconnect();
  }
  const start = fromOffset > low ? fromOffset : low;
  if (start >= end) return { records: 0, endOffset: end.toString(), seconds: (performance.now() - started) / 1000 };

  const consumer = kafka.consumer({ groupId: `sluice-restore-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 100, maxBytesPerPartition: 4 * 1024 * 1024 });
  let records = 0;
  let position = start;
  let finish!: () => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const reached = (offset: bigint): void => {
    if (offset > position) position = offset;
    if (position >= end) finish();
  };
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const others = (payload.memberAssignment[topic] ?? []).filter((candidate) => candidate !== partition);
    if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
    consumer.seek({ topic, partition, offset: start.toString() });
  });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.partition === partition) reached(BigInt(payload.lastOffset) + 1n);
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error));
  const timer = setTimeout(() => fail(new StateStoreError(`restoring ${topic}/${partition} did not reach offset ${end} within ${timeoutMs} ms (at ${position})`)), timeoutMs);
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        if (batch.partition !== partition || payload.isStale()) return;
        for (const message of batch.messages) {
          if (BigInt(message.offset) < start) continue;
          await apply(message.key, message.value, message.offset);
          records++;
        }
        reached(BigInt(batch.lastOffset()) + 1n);
      },
    });
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
  return { records, endOffset: end.toString(), seconds: (performance.now() - started) / 1000 };
}
