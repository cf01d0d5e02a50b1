import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { startEphemeralKafka } from '../kafka/index.js';
import { AvroSerde, avroType, RegistryHttpClient, startSchemaRegistry } from '../schemas/index.js';
import { transactions } from '../examples/fraud/sources.js';
import { printTable } from './report.js';

/**
 * Confluent-framed Avro encode+decode of the 12-field events.transactions record with the
 * schema id cached (the steady state of every stage), with and without writer→reader
 * resolution; and lookups/s against sluice's registry over HTTP on loopback.
 */
const SECONDS = 3;

export async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const kafka = await startEphemeralKafka(config, logger);
  const registry = await startSchemaRegistry({ brokers: kafka.brokers, topic: '_schemas', host: '127.0.0.1', port: 0, logger });
  const rows: Record<string, string | number>[] = [];
  try {
    const schema = transactions.eventsSchema;
    const client = new RegistryHttpClient(registry.url);
    const id = await client.register('events.transactions-value', schema);
    const record = {
      transaction_id: 'tx-000123456',
      card_id: 'card-00042',
      merchant_id: 'merchant-0917',
      merchant_category: '5411',
      amount: 1234.56,
      currency: 'EUR',
      country: 'NL',
      channel: 'ONLINE',
      timestamp: 1_795_000_000_000,
      event_id: 'transactions:tx-000123456',
      event_time: 1_795_000_000_000,
      ingest_time: 1_795_000_000_123,
    };
    const fields = schema.fields.length;

    const plain = new AvroSerde(registry.url, avroType(schema));
    await plain.decode(await plain.encode(id, record)); // warm the id cache
    rows.push(
      await measure(`encode+decode, same schema (${fields} fields)`, async () => {
        await plain.decode(await plain.encode(id, record));
      }),
    );

    // A newer reader with one more defaulted field: every decode resolves writer to reader.
    const newer = { ...schema, fields: [...schema.fields, { name: 'risk_hint', type: 'double', default: 0 }] };
    const resolving = new AvroSerde(registry.url, avroType(newer));
    await resolving.decode(await resolving.encode(id, record));
    rows.push(
      await measure('encode+decode, resolving to a newer reader', async () => {
        await resolving.decode(await resolving.encode(id, record));
      }),
    );

    const bytes = await plain.encode(id, record);
    rows.push({
      ...(await measure('encode only', async () => {
        await plain.encode(id, record);
      })),
      'bytes/record': bytes.length,
    });
    rows.push(
      await measure('decode only', async () => {
        await plain.decode(bytes);
      }),
    );

    for (const concurrency of [1, 8]) {
      rows.push(
        await measure(
          'registry GET /schemas/ids/{id} (HTTP)',
          async () => {
            await client.call('GET', `/schemas/ids/${id}`);
          },
          concurrency,
        ),
      );
      rows.push(
        await measure(
          'registry POST /subjects/{s} lookup (HTTP)',
          async () => {
            await client.call('POST', '/subjects/events.transactions-value', { schema: JSON.stringify(schema) });
          },
          concurrency,
        ),
      );
    }
  } finally {
    await registry.stop();
    await kafka.stop();
  }
  printTable('Avro serde (Confluent wire format, schema id cached) and registry lookups, one Node.js process', rows);
}

/** Runs `step` for SECONDS with `concurrency` callers; µs/op is per call as one caller sees it. */
async function measure(operation: string, step: () => Promise<void>, concurrency = 1): Promise<Record<string, string | number>> {
  const deadline = performance.now() + SECONDS * 1000;
  let count = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        for (let i = 0; i < 50; i++) await step();
        count += 50;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { operation, concurrency, 'ops/s': Math.round(count / seconds), 'µs/op': ((seconds * 1e6 * concurrency) / count).toFixed(1) };
}
