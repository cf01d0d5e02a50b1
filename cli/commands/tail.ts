import { randomUUID } from 'node:crypto';
import { createKafka } from '../../kafka/index.js';
import { AvroSerde } from '../../schemas/index.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';

/** `sluice tail <topic>`: prints a topic's records as JSON lines (Avro decoded), committed only; Ctrl-C stops. */
export async function tailCommand(
  context: CommandContext,
  topic: string,
  options: { readonly fromBeginning?: boolean; readonly max?: string },
): Promise<number> {
  const cluster = await findCluster(context.config);
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'sluice-tail', logger: context.logger });
  const serde = new AvroSerde(cluster.registryUrl);
  const consumer = kafka.consumer({ groupId: `sluice-tail-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  const max = options.max === undefined ? Number.POSITIVE_INFINITY : Number(options.max);
  let printed = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => finish());
  await consumer.connect();
  await consumer.subscribe({ topic: `${context.config.topicPrefix}${topic}`, fromBeginning: options.fromBeginning ?? false });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      if (printed >= max) return;
      let value: unknown;
      try {
        value = message.value && message.value[0] === 0 ? await serde.decode(message.value) : (message.value?.toString('utf8') ?? null);
      } catch {
        value = message.value?.toString('base64') ?? null;
      }
      process.stdout.write(`${JSON.stringify({ partition, offset: message.offset, key: message.key?.toString() ?? null, value })}\n`);
      if (++printed >= max) finish();
    },
  });
  await done;
  await consumer.disconnect();
  return 0;
}
