import registryClient from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import {
  AvroSerde,
  avroType,
  sourceSubjects,
  registerSchemas,
  SchemaStartupError,
  startSchemaRegistry,
  type RunningSchemaRegistry,
} from '../../schemas/index.js';
import { createTopic, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { transactions as transactionSource } from '../../examples/fraud/sources.js';

const { SchemaRegistry, SchemaType } = registryClient;

const paymentV1 = {
  type: 'record' as const,
  name: 'Payment',
  namespace: 'test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'amount', type: 'int' },
  ],
};
// Evolved: amount promoted to long, a defaulted field added.
const paymentV2 = {
  ...paymentV1,
  fields: [
    { name: 'id', type: 'string' },
    { name: 'amount', type: 'long' },
    { name: 'currency', type: 'string', default: 'EUR' },
  ],
};
// Breaks BACKWARD: a required field without default.
const paymentBroken = { ...paymentV1, fields: [...paymentV1.fields, { name: 'merchant', type: 'string' }] };

describe('the schema registry, through the official client, stored in Kafka', () => {
  let registry: RunningSchemaRegistry;
  let client: InstanceType<typeof SchemaRegistry>;
  const prefix = `${uniqueName('reg')}.`;

  beforeAll(async () => {
    registry = await startSchemaRegistry({
      brokers: inject('brokers'),
      topic: `${prefix}_schemas`,
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
    });
    client = new SchemaRegistry({ host: registry.url });
  });

  afterAll(async () => {
    await registry.stop();
  });

  it('registers, looks up, evolves and refuses an incompatible change', async () => {
    const subject = 'payments-value';
    const v1 = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(paymentV1) }, { subject });
    expect(await client.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema: JSON.stringify(paymentV1) })).toBe(v1.id);
    const v2 = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(paymentV2) }, { subject });
    expect(v2.id).not.toBe(v1.id);
    expect(await client.getLatestSchemaId(subject)).toBe(v2.id);
    expect(await client.getRegistryId(subject, 1)).toBe(v1.id);
    await expect(client.register({ type: SchemaType.AVRO, schema: JSON.stringify(paymentBroken) }, { subject })).rejects.toThrow(
      /incompatible.*READER_FIELD_MISSING_DEFAULT_VALUE at \/fields\/merchant/,
    );
    expect(await client.getLatestSchemaId(subject)).toBe(v2.id);
  });

  it('decodes old data with a new reader: old and new producers consumed as one shape', async () => {
    const subject = 'orders-value';
    const v1 = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(paymentV1) }, { subject });
    const oldBytes = await client.encode(v1.id, { id: 'p-1', amount: 12 });
    // The official client resolves an old message into the new reader schema.
    const v2 = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(paymentV2) }, { subject });
    const newBytes = await client.encode(v2.id, { id: 'p-2', amount: 2 ** 40, currency: 'USD' });
    expect(await client.decode(oldBytes, { [SchemaType.AVRO]: { readerSchema: paymentV2 } })).toEqual({
      id: 'p-1',
      amount: 12,
      currency: 'EUR',
    });

    // Through Kafka, with sluice's serde and the new reader.
    const kafka = testKafka();
    const topic = uniqueName('orders');
    const admin = kafka.admin();
    await admin.connect();
    await createTopic(admin, topic, 2);
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        { key: 'p-1', value: oldBytes },
        { key: 'p-2', value: newBytes },
      ],
    });
    await producer.disconnect();

    const serde = new AvroSerde(registry.url, avroType(paymentV2));
    const decoded: unknown[] = [];
    const consumer = kafka.consumer({ groupId: uniqueName('orders-reader') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        decoded.push(await serde.decode(message.value ?? Buffer.alloc(0)));
      },
    });
    await waitUntil(() => decoded.length >= 2, 30_000, 'both messages');
    await consumer.disconnect();
    expect(decoded).toEqual(
      expect.arrayContaining([
        { id: 'p-1', amount: 12, currency: 'EUR' },
        { id: 'p-2', amount: 2 ** 40, currency: 'USD' },
      ]),
    );
  });

  it('gives concurrent registrations of one schema one id', async () => {
    const schema = JSON.stringify({ type: 'record', name: 'Concurrent', fields: [{ name: 'x', type: 'int' }] });
    const responses = await Promise.all(
      Array.from({ length: 24 }, (_, index) =>
        fetch(`${registry.url}/subjects/concurrent-${index % 3}/versions`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
          body: JSON.stringify({ schema }),
        }).then((response) => response.json() as Promise<{ id: number }>),
      ),
    );
    expect(new Set(responses.map((response) => response.id)).size).toBe(1);
    for (let subject = 0; subject < 3; subject++) {
      const versions = await fetch(`${registry.url}/subjects/concurrent-${subject}/versions`).then(
        (response) => response.json() as Promise<number[]>,
      );
      expect(versions).toEqual([1]);
    }
  });

  it('fails start-up registration on an incompatible project schema, naming subject, field and rule', async () => {
    const subjects = sourceSubjects(prefix, 'transactions', transactionSource.rawSchema, transactionSource.eventsSchema);
    const transactions = subjects.find((entry) => entry.subject === `${prefix}raw.transactions-value`)!;
    // An older deployment's Transaction that had a required field the project schema lacks.
    const older = transactionSource.rawSchema;
    const withExtra = { ...older, fields: [...older.fields, { name: 'terminal_id', type: 'string' }] };
    await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(withExtra) }, { subject: transactions.subject });
    await fetch(`${registry.url}/config/${transactions.subject}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ compatibility: 'FORWARD' }),
    });
    const failure = registerSchemas(registry.url, [transactions], silentLogger());
    await expect(failure).rejects.toBeInstanceOf(SchemaStartupError);
    await expect(failure).rejects.toThrow(
      new RegExp(
        `the schema of source transactions is incompatible with subject ${prefix.replace('.', '\\.')}raw\\.transactions-value: READER_FIELD_MISSING_DEFAULT_VALUE at /fields/terminal_id`,
      ),
    );
  });
});
