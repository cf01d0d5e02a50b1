import type { Kafka } from 'kafkajs';
import { readRanges, resolveRanges, TopicRangeError } from '../kafka/topic-range.js';
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
 * restore starts), committed records only, calling `apply` for each in offset order — the
 * topic-range reader over one partition.
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
  const range = (await resolveRanges(kafka, topic, { fromOffsets: { [partition]: fromOffset.toString() } })).find(
    (candidate) => candidate.partition === partition,
  );
  if (!range) throw new StateStoreError(`${topic} has no partition ${partition}`);
  try {
    const { records } = await readRanges(
      kafka,
      topic,
      [range],
      (_partition, message) => apply(message.key, message.value, message.offset),
      timeoutMs,
    );
    return { records, endOffset: range.to.toString(), seconds: (performance.now() - started) / 1000 };
  } catch (error) {
    if (error instanceof TopicRangeError)
      throw new StateStoreError(`restoring ${topic}/${partition} did not reach offset ${range.to} within ${timeoutMs} ms`, {
        cause: error,
      });
    throw error;
  }
}
