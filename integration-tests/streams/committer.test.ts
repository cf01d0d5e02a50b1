import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { TransactionalCommitterFactory } from '../../streams/runtime/committer.js';
import { errorChain } from '../../kafka/index.js';
import { createTopic, readToEnd, testKafka, uniqueName, waitUntil } from '../helpers.js';

/**
 * The exactly-once committer sends a commit's records and its input offsets side by side in one
 * transaction: both land together, or neither does; commits follow each other without waiting.
 */
describe('the transactional committer on the real broker', () => {
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

  const committedOffset = async (groupId: string, topic: string): Promise<string | undefined> => {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return entry?.partitions.find((partition) => partition.partition === 0)?.offset;
  };

  /** Transactional offsets show once the commit marker reaches __consumer_offsets, just after EndTxn. */
  const offsetBecomes = (groupId: string, topic: string, offset: string): Promise<void> =>
    waitUntil(async () => (await committedOffset(groupId, topic)) === offset, 10_000, `${groupId} at ${offset}`);

  /** The `type`s of an error and of the errors it wraps (kafkajs wraps protocol errors). */
  const errorTypes = (error: unknown): unknown[] => [...errorChain(error)].map((current) => ('type' in current ? current.type : undefined));

  it('commits records and offsets together, and neither when the records are refused', async () => {
    const input = uniqueName('committer-in');
    const output = uniqueName('committer-out');
    await createTopic(admin, input, 1);
    // Records above 2 KiB are refused by this topic (MESSAGE_TOO_LARGE: not retriable).
    await createTopic(admin, output, 1, { 'max.message.bytes': '2048' });
    const groupId = uniqueName('committer');
    const factory = new TransactionalCommitterFactory(kafka, groupId, 'it-', 60_000);

    const first = await factory.open(`${input}-0`);
    try {
      const produced = await first.commit(
        [
          { topic: output, partition: 0, key: 'a', value: Buffer.from('one') },
          { topic: output, partition: 0, key: 'b', value: Buffer.from('two') },
        ],
        [{ topic: input, partition: 0, offset: '2' }],
      );
      expect(produced).toEqual([{ topic: output, partition: 0, baseOffset: 0n, records: 2 }]);
      await offsetBecomes(groupId, input, '2');

      // A commit whose records the broker refuses, its offsets sent beside them.
      const failed = await first
        .commit(
          [
            { topic: output, partition: 0, key: 'c', value: Buffer.from('three') },
            { topic: output, partition: 0, key: 'big', value: Buffer.alloc(8 * 1024, 1) },
          ],
          [{ topic: input, partition: 0, offset: '3' }],
        )
        .then(
          () => undefined,
          (error: unknown) => error,
        );
      expect(errorTypes(failed)).toContain('MESSAGE_TOO_LARGE');
    } finally {
      await first.close();
    }

    // The next owner (a new producer with the same id, as a task opens after a failed commit):
    // opening it settles whatever the first left open. The refused commit's offset is not
    // committed, and the new owner goes on from the first commit.
    const second = await factory.open(`${input}-0`);
    try {
      expect(await committedOffset(groupId, input)).toBe('2');
      await second.commit(
        [{ topic: output, partition: 0, key: 'c', value: Buffer.from('three') }],
        [{ topic: input, partition: 0, offset: '3' }],
      );
    } finally {
      await second.close();
    }
    await offsetBecomes(groupId, input, '3');
    const records = await readToEnd(kafka, output);
    expect(records.map((record) => record.value?.toString())).toEqual(['one', 'two', 'three']);
  });

  it('commits one transaction right after another, records and offsets side by side, none refused', async () => {
    const input = uniqueName('committer-in');
    const output = uniqueName('committer-out');
    await createTopic(admin, input, 1);
    await createTopic(admin, output, 2);
    const groupId = uniqueName('committer');
    const committer = await new TransactionalCommitterFactory(kafka, groupId, 'it-', 60_000).open(`${input}-0`);
    // Each commit begins as the one before ends, while the coordinator may still write its markers
    // (until then it answers CONCURRENT_TRANSACTIONS, to AddPartitionsToTxn and AddOffsetsToTxn
    // alike): every one must still commit. Every fifth carries offsets only.
    const commits = 200;
    try {
      for (let index = 0; index < commits; index++) {
        const outputs =
          index % 5 === 4
            ? []
            : [
                { topic: output, partition: 0, key: `k${index}`, value: Buffer.from(`v${index}`) },
                { topic: output, partition: 1, key: `k${index}`, value: Buffer.from(`w${index}`) },
              ];
        await committer.commit(outputs, [{ topic: input, partition: 0, offset: String(index + 1) }]);
      }
    } finally {
      await committer.close();
    }
    await offsetBecomes(groupId, input, String(commits));
    expect(await readToEnd(kafka, output)).toHaveLength((commits / 5) * 4 * 2);
  });
});
