import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { ConfigError } from '../../common/errors.js';
import { createKafka, resolveRanges } from '../../kafka/index.js';
import { AvroSerde } from '../../schemas/index.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';

/**
 * `sluice tail <topic>`: prints a topic's records as JSON lines (Avro decoded), committed only.
 * With `--from-beginning --max N` it stops after N records or at the end of the topic (as it was
 * when the command started), whichever comes first, and says which; otherwise it follows new
 * records, says on stderr when it is waiting for them, and stops after N or on Ctrl-C.
 */
export async function tailCommand(
  context: CommandContext,
  topic: string,
  options: { readonly fromBeginning?: boolean; readonly max?: string },
): Promise<number> {
  const max = options.max === undefined ? Number.POSITIVE_INFINITY : Number(options.max);
  if (!(max === Number.POSITIVE_INFINITY || (Number.isInteger(max) && max > 0)))
    throw new ConfigError(`--max must be a positive whole number, not ${JSON.stringify(options.max)}`);
  const cluster = await findCluster(context.config);
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'sluice-tail', logger: context.logger });
  const serde = new AvroSerde(cluster.registryUrl);
  const name = `${context.config.topicPrefix}${topic}`;
  const print = async (partition: number, message: KafkaMessage): Promise<void> => {
    let value: unknown;
    try {
      value = message.value && message.value[0] === 0 ? await serde.decode(message.value) : (message.value?.toString('utf8') ?? null);
    } catch {
      value = message.value?.toString('base64') ?? null;
    }
    process.stdout.write(`${JSON.stringify({ partition, offset: message.offset, key: message.key?.toString() ?? null, value })}\n`);
  };
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stop = resolve;
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop());

  if (options.fromBeginning && Number.isFinite(max)) {
    const printed = await readUpTo(kafka, name, max, print, stopped);
    if (printed < max) process.stderr.write(`sluice: reached the end of ${name} after ${printed} record(s), fewer than --max ${max}\n`);
    return 0;
  }

  const consumer = kafka.consumer({ groupId: `sluice-tail-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  let printed = 0;
  const waiting = setTimeout(
    () => process.stderr.write(`sluice: waiting for ${options.fromBeginning ? 'more' : 'new'} records on ${name} (Ctrl-C stops)\n`),
    3_000,
  );
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: name, fromBeginning: options.fromBeginning ?? false });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (printed >= max) return;
        waiting.refresh();
        await print(partition, message);
        if (++printed >= max) stop();
      },
    });
    await stopped;
  } finally {
    clearTimeout(waiting);
    await consumer.disconnect();
  }
  return 0;
}

/**
 * Reads a topic from its start to its end as of now, at most `max` records, in offset order per
 * partition; transaction markers at a partition's end count as reached (END_BATCH_PROCESS).
 */
async function readUpTo(
  kafka: Kafka,
  topic: string,
  max: number,
  onMessage: (partition: number, message: KafkaMessage) => Promise<void>,
  stopped: Promise<void>,
): Promise<number> {
  const pending = new Map(
    (await resolveRanges(kafka, topic)).filter((range) => range.to > range.from).map((range) => [range.partition, range]),
  );
  if (pending.size === 0) return 0;
  const consumer = kafka.consumer({ groupId: `sluice-tail-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  let printed = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const reached = (partition: number, next: bigint): void => {
    const range = pending.get(partition);
    if (range && next >= range.to) {
      pending.delete(partition);
      consumer.pause([{ topic, partitions: [partition] }]);
      if (pending.size === 0) finish();
    }
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => reached(payload.partition, BigInt(payload.lastOffset) + 1n));
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async (payload) => {
        const { batch } = payload;
        const range = pending.get(batch.partition);
        if (!range || payload.isStale()) return;
        for (const message of batch.messages) {
          if (printed >= max || BigInt(message.offset) >= range.to) break;
          await onMessage(batch.partition, message);
          if (++printed >= max) finish();
        }
        reached(batch.partition, BigInt(batch.lastOffset()) + 1n);
      },
    });
    await Promise.race([done, stopped]);
  } finally {
    await consumer.disconnect();
  }
  return printed;
}
