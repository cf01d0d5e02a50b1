import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { createKafka, ensureTopics } from '../../kafka/index.js';
import { ensureTables, predictionsTable, RemoteOfflineStore } from '../../offline/index.js';
import { dockerAvailable, startClickHouseContainer, startKafkaContainer, type RunningContainer } from '../setup/containers.js';

const docker = await dockerAvailable();

/**
 * sluice against testcontainers' Kafka and ClickHouse modules. Needs a Docker engine: without one
 * (as on our machines) vitest reports these tests as skipped — never as passed.
 */
describe.skipIf(!docker)('sluice on testcontainers (needs a Docker engine)', () => {
  const running: RunningContainer<unknown>[] = [];
  afterAll(async () => {
    for (const container of running) await container.stop();
  });

  it('produces and consumes through a Kafka container', { timeout: 300_000 }, async () => {
    const kafka = await startKafkaContainer();
    running.push(kafka);
    const client = createKafka({ brokers: kafka.value, clientId: 'containers-test', logger: silentLogger() });
    const admin = client.admin();
    await admin.connect();
    const topic = `containers-${randomUUID()}`;
    await ensureTopics(admin, [{ name: topic, partitions: 1 }], silentLogger());
    await admin.disconnect();
    const producer = client.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'k', value: 'hello from a container' }] });
    await producer.disconnect();
    const consumer = client.consumer({ groupId: `${topic}-reader` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = await new Promise<string>((resolve) => {
      void consumer.run({ eachMessage: ({ message }) => Promise.resolve(resolve(message.value?.toString() ?? '')) });
    });
    await consumer.disconnect();
    expect(received).toBe('hello from a container');
  });

  it('keeps the offline store in a ClickHouse container (the CLICKHOUSE_URL path)', { timeout: 300_000 }, async () => {
    const clickhouse = await startClickHouseContainer();
    running.push(clickhouse);
    const store = new RemoteOfflineStore(clickhouse.value);
    try {
      const table = predictionsTable('containers');
      await ensureTables(store, [table]);
      const rows = await store.query<{ name: string }>(`SELECT name FROM system.tables WHERE database = currentDatabase()`);
      expect(rows.map((row) => row.name)).toContain(table.name);
    } finally {
      await store.close();
    }
  });
});
