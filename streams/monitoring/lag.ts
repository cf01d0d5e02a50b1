import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import type { AvroSerde } from '../../schemas/index.js';

/**
 * Samples the lag of consumer groups (records of their input topics not committed yet) every
 * `intervalMs` and writes one monitoring.lag record per group, for consumer-lag alert rules. The
 * samples are wall-clock facts about processing, so unlike drift and performance they are not
 * recomputed by replay.
 */
export interface LagSamplerOptions {
  readonly kafka: Kafka;
  /** Groups and the topics they read. */
  readonly groups: readonly { readonly group: string; readonly topics: readonly string[] }[];
  readonly topic: string;
  readonly serde: AvroSerde;
  readonly schemaId: number;
  readonly intervalMs: number;
  readonly logger: Logger;
}

export interface RunningLagSampler {
  stop(): Promise<void>;
}

/** Records of `topics` that `group` has not committed yet. */
export async function groupLag(admin: Admin, group: string, topics: readonly string[]): Promise<number> {
  let lag = 0;
  for (const topic of topics) {
    const [committed, ends] = await Promise.all([admin.fetchOffsets({ groupId: group, topics: [topic] }), admin.fetchTopicOffsets(topic)]);
    const byPartition = new Map(committed[0]?.partitions.map((entry) => [entry.partition, Number(entry.offset)]) ?? []);
    for (const end of ends) lag += Math.max(0, Number(end.high) - Math.max(Number(end.low), byPartition.get(end.partition) ?? 0));
  }
  return lag;
}

export async function startLagSampler(options: LagSamplerOptions): Promise<RunningLagSampler> {
  const admin = options.kafka.admin();
  const producer: Producer = options.kafka.producer({ idempotent: true });
  await admin.connect();
  await producer.connect();
  let stopped = false;
  const sample = async (): Promise<void> => {
    const at = Date.now();
    const messages = [];
    for (const { group, topics } of options.groups) {
      const lag = await groupLag(admin, group, topics);
      messages.push({
        key: group,
        value: await options.serde.encode(options.schemaId, { group, lag, topics: [...topics], at }),
        timestamp: String(at),
      });
    }
    if (messages.length > 0) await producer.send({ topic: options.topic, acks: -1, messages });
  };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running
      .then(() => (stopped ? undefined : sample()))
      .catch((error: unknown) =>
        options.logger.warn({ error: errorMessage(error) }, 'lag sample failed; trying again at the next interval'),
      );
  }, options.intervalMs);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    },
  };
}
