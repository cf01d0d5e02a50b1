import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { createTopic, readToEnd, testKafka, uniqueName } from '../helpers.js';

/**
 * kafkajs' transactions as patched (patches/kafkajs+2.2.4.patch): the producer keeps the
 * transaction and group coordinators it found instead of sending FindCoordinator before every
 * transactional request, and still commits, fences and recovers as before.
 */
describe('transactions through the patched kafkajs, against the real broker', () => {
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    kafka = testKafka('sluice-it-transactions');
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  /** Counts the producer's requests by API name. */
  const countRequests = (producer: Producer): Map<string, number> => {
    const counts = new Map<string, number>();
    producer.on(producer.events.REQUEST, (event) => {
      counts.set(event.payload.apiName, (counts.get(event.payload.apiName) ?? 0) + 1);
    });
    return counts;
  };

  const transactional = (transactionalId: string): Producer =>
    kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 });

  it('looks its coordinators up in the first transaction only, and commits all 20 with their offsets', async () => {
    const topic = uniqueName('txn-out');
    const input = uniqueName('txn-in');
    const group = uniqueName('txn-group');
    await createTopic(admin, topic, 2);
    await createTopic(admin, input, 1);
    const producer = transactional(uniqueName('txn'));
    const requests = countRequests(producer);
    await producer.connect();
    let lookupsInFirst = 0;
    for (let index = 0; index < 20; index++) {
      const transaction = await producer.transaction();
      await transaction.send({ topic, messages: [{ key: `k${index % 5}`, value: `v${index}` }] });
      await transaction.sendOffsets({
        consumerGroupId: group,
        topics: [{ topic: input, partitions: [{ partition: 0, offset: String(index + 1) }] }],
      });
      await transaction.commit();
      if (index === 0) lookupsInFirst = requests.get('GroupCoordinator') ?? 0;
    }
    await producer.disconnect();

    expect(requests.get('EndTxn')).toBe(20);
    expect(requests.get('TxnOffsetCommit')).toBe(20);
    // The transaction coordinator (at InitProducerId) and the group's, found in the first
    // transaction (more than once while a new coordinator loads); none after it. Unpatched,
    // kafkajs looked up 4 per transaction.
    expect(lookupsInFirst).toBeGreaterThanOrEqual(2);
    expect(requests.get('GroupCoordinator')).toBe(lookupsInFirst);
    const committed = await readToEnd(kafka, topic);
    expect(committed.map((message) => message.value?.toString()).sort()).toEqual(
      Array.from({ length: 20 }, (_, index) => `v${index}`).sort(),
    );
    const offsets = await admin.fetchOffsets({ groupId: group, topics: [input] });
    expect(offsets[0]?.partitions[0]?.offset).toBe('20');
  });

  it('a fenced producer cannot commit, and the instance that fenced it carries on with one coordinator lookup', async () => {
    const topic = uniqueName('txn-fence');
    await createTopic(admin, topic, 1);
    const id = uniqueName('txn-fenced');
    const zombie = transactional(id);
    await zombie.connect();
    const first = await zombie.transaction();
    await first.send({ topic, messages: [{ key: 'a', value: 'committed' }] });
    await first.commit();
    const open = await zombie.transaction();
    await open.send({ topic, messages: [{ key: 'a', value: 'zombie' }] });

    // Another instance claims the transactional id (its first transaction): the open one is aborted, its epoch fenced.
    const successor = transactional(id);
    const requests = countRequests(successor);
    await successor.connect();
    const claimed = await successor.transaction();
    // Fenced: the broker answers the old epoch with INVALID_PRODUCER_EPOCH or PRODUCER_FENCED.
    const fenced = await open.commit().then(
      () => undefined,
      (error: unknown) => error as { type?: string },
    );
    expect(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED']).toContain(fenced?.type);
    await zombie.disconnect();

    await claimed.send({ topic, messages: [{ key: 'a', value: 'successor 0' }] });
    await claimed.commit();
    for (let index = 1; index < 3; index++) {
      const transaction = await successor.transaction();
      await transaction.send({ topic, messages: [{ key: 'a', value: `successor ${index}` }] });
      await transaction.commit();
    }
    await successor.disconnect();
    expect(requests.get('EndTxn')).toBe(3);
    expect(requests.get('GroupCoordinator')).toBe(1);
    const committed = await readToEnd(kafka, topic);
    expect(committed.map((message) => message.value?.toString())).toEqual(['committed', 'successor 0', 'successor 1', 'successor 2']);
  });
});
