import type { Admin, Kafka } from 'kafkajs';
import { readToEnd } from '../helpers.js';

/**
 * Records of a topic that a group's committed offsets do not cover yet. A topic written in
 * transactions ends in commit markers (and may hold aborted records) that the end offsets count:
 * the records themselves (read_committed, to the end offsets) are compared with the committed
 * offsets instead.
 */
export async function pendingRecords(admin: Admin, kafka: Kafka, group: string, topic: string): Promise<number> {
  const committed = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const from = new Map(committed[0]?.partitions.map((entry) => [entry.partition, Number(entry.offset)]) ?? []);
  let pending = 0;
  for (const message of await readToEnd(kafka, topic)) if (Number(message.offset) >= (from.get(message.partition) ?? 0)) pending++;
  return pending;
}
