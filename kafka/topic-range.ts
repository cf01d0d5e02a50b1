import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { SluiceError } from '../common/errors.js';
import { retryKafka } from './retriable.js';

/** Offsets [from, to) of one partition. */
export interface PartitionRange {
  readonly partition: number;
  readonly from: bigint;
  readonly to: bigint;
}

/** Where a replay starts and ends: timestamps (Kafka record time, ms) or offsets per partition. */
export interface RangeBounds {
  readonly fromTime?: number;
  readonly toTime?: number;
  readonly fromOffsets?: Readonly<Record<number, string | number>>;
  readonly toOffsets?: Readonly<Record<number, string | number>>;
}

export class TopicRangeError extends SluiceError {}

/** Resolves bounds to offsets; the end defaults to the partitions' ends when the job starts. */
export function resolveRanges(kafka: Kafka, topic: string, bounds: RangeBounds = {}): Promise<PartitionRange[]> {
  // A topic created a moment ago may not be hosted by its leader yet: retriable, so retried.
  return retryKafka(() => resolveRangesOnce(kafka, topic, bounds));
}

async function resolveRangesOnce(kafka: Kafka, topic: string, bounds: RangeBounds): Promise<PartitionRange[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const atTime = async (time: number | undefined): Promise<Map<number, bigint> | undefined> => {
      if (time === undefined) return undefined;
      const found = await admin.fetchTopicOffsetsByTimestamp(topic, time);
      // -1: no record at or after the time: the partition's end.
      return new Map(
        found.map((entry) => [
          entry.partition,
          entry.offset === '-1' ? BigInt(offsets.find((o) => o.partition === entry.partition)?.high ?? '0') : BigInt(entry.offset),
        ]),
      );
    };
    const fromTimes = await atTime(bounds.fromTime);
    const toTimes = await atTime(bounds.toTime);
    return offsets
      .map((entry) => {
        const low = BigInt(entry.low);
        const high = BigInt(entry.high);
        const explicitFrom = bounds.fromOffsets?.[entry.partition];
        const explicitTo = bounds.toOffsets?.[entry.partition];
        let from = explicitFrom !== undefined ? BigInt(explicitFrom) : (fromTimes?.get(entry.partition) ?? low);
        let to = explicitTo !== undefined ? BigInt(explicitTo) : (toTimes?.get(entry.partition) ?? high);
        if (from < low) from = low;
        if (to > high) to = high;
        return { partition: entry.partition, from, to: to < from ? from : to };
      })
      .sort((left, right) => left.partition - right.partition);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads the committed records of the ranges, each partition in offset order, calling `onMessage`.
 * A throw-away consumer group (kafkajs has no manual assignment) seeks every partition to its
 * start; transaction markers at a range's end are noticed through END_BATCH_PROCESS.
 */
export async function readRanges(
  kafka: Kafka,
  topic: string,
  ranges: readonly PartitionRange[],
  onMessage: (partition: number, message: KafkaMessage) => Promise<void> | void,
  timeoutMs = 3_600_000,
  /** Largest fetch per partition (records larger than it still come, one batch per fetch). */
  maxBytesPerPartition = 4 * 1024 * 1024,
): Promise<{ records: number }> {
  const pending = new Map(ranges.filter((range) => range.to > range.from).map((range) => [range.partition, range]));
  if (pending.size === 0) return { records: 0 };
  const consumer = kafka.consumer({
    groupId: `sluice-replay-${randomUUID()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition,
  });
  let records = 0;
  /** Per partition, the offset after the last record handed to onMessage. */
  const delivered = new Map<number, bigint>();
  let finish!: () => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const reached = (partition: number, next: bigint): void => {
    const range = pending.get(partition);
    if (range && next >= range.to) {
      pending.delete(partition);
      consumer.pause([{ topic, partitions: [partition] }]);
      if (pending.size === 0) finish();
    }
  };
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    const assigned = payload.memberAssignment[topic] ?? [];
    const idle = assigned.filter((partition) => !pending.has(partition));
    if (idle.length > 0) consumer.pause([{ topic, partitions: idle }]);
    // After a restart (rejoin), continue after what was delivered: nothing is delivered twice.
    for (const [partition, range] of pending)
      consumer.seek({ topic, partition, offset: (delivered.get(partition) ?? range.from).toString() });
  });
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => reached(payload.partition, BigInt(payload.lastOffset) + 1n));
  // kafkajs restarts the consumer itself after a retriable crash; only a final one ends the read.
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (!payload.restart) fail(payload.error);
  });
  const timer = setTimeout(
    () => fail(new TopicRangeError('SLUICE_REPLAY_TIMEOUT', `reading ${topic} did not finish within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    await retryKafka(() => consumer.connect());
    await retryKafka(() => consumer.subscribe({ topic, fromBeginning: true }));
    await consumer.run({
      autoCommit: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        const range = pending.get(batch.partition);
        if (!range || payload.isStale()) return;
        for (const message of batch.messages) {
          const offset = BigInt(message.offset);
          if (offset < (delivered.get(batch.partition) ?? range.from) || offset >= range.to) continue;
          await onMessage(batch.partition, message);
          delivered.set(batch.partition, offset + 1n);
          records++;
        }
        reached(batch.partition, BigInt(batch.lastOffset()) + 1n);
      },
    });
    await done;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect().catch(() => undefined);
  }
  return { records };
}
