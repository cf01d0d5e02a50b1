import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { createTopic, readToEnd, testKafka, uniqueName } from '../helpers.js';

/**
 * read_committed through the patched kafkajs (patches/kafkajs+2.2.4.patch, filterAbortedMessages)
 * over a partition that several transactional producers write at once — a monitoring partials
 * topic, a repartition topic, events.* behind several ingest tasks — after they were killed
 * mid-transaction (their transactions aborted). A fetch that starts inside two or more aborted
 * transactions (any fetch after the first, when records are large or fetches small) delivered
 * aborted records with kafkajs' own filter: the monitoring merger then counted partials twice.
 */
describe('read_committed over interleaved aborted transactions, against the real broker', () => {
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    kafka = testKafka('sluice-it-aborted');
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  it('delivers no record of an aborted transaction, whatever the fetch size', async () => {
    const topic = uniqueName('aborted');
    await createTopic(admin, topic, 1);
    const producers = await Promise.all(
      ['a', 'b', 'c'].map(async (name) => {
        const producer = kafka.producer({ transactionalId: uniqueName(`aborted-${name}`), idempotent: true, maxInFlightRequests: 1 });
        await producer.connect();
        return { name, producer };
      }),
    );
    // Two rounds of interleaved transactions that abort, then one that commits: 12 committed records, last.
    for (const outcome of ['abort', 'abort', 'commit'] as const) {
      const transactions = await Promise.all(producers.map(({ producer }) => producer.transaction()));
      for (let index = 0; index < 4; index++)
        for (const [at, { name }] of producers.entries())
          await transactions[at]?.send({ topic, messages: [{ key: name, value: `${outcome}-${name}-${index}` }] });
      for (const transaction of transactions) await (outcome === 'commit' ? transaction.commit() : transaction.abort());
    }
    for (const { producer } of producers) await producer.disconnect();

    // 1 byte: one record batch per fetch, each fetch starting after the previous; 200: a few; 1 MiB: all at once.
    for (const maxBytesPerPartition of [1, 200, 1024 * 1024]) {
      const values = (await readToEnd(kafka, topic, { maxBytesPerPartition })).map((message) => message.value?.toString() ?? '');
      expect({ maxBytesPerPartition, aborted: values.filter((value) => value.startsWith('abort')) }).toEqual({
        maxBytesPerPartition,
        aborted: [],
      });
      expect(values).toHaveLength(12);
    }
  });
});
