import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { ensureTopics, retryKafka } from '../../kafka/index.js';
import { SchemaRegistryError } from '../errors.js';
import { encodeRecord, type RegistryKey } from './records.js';

export interface KafkaLogOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly logger: Logger;
  /** Called for every record in log order, during the initial replay and after. */
  readonly onRecord: (key: Buffer | null, value: Buffer | null, offset: string) => void;
  /** How long a write may take to come back through the log before it fails (50002). */
  readonly writeTimeoutMs?: number;
}

/**
 * The registry's storage: one compacted, single-partition topic read from the beginning on start
 * and tailed after. A write is acknowledged only when it has been read back and applied, so the
 * in-memory state is always exactly a prefix of the log.
 */
export class KafkaLog {
  private readonly producer: Producer;
  private readonly consumer: Consumer;
  private applied = -1n;
  private readonly waiters: { offset: bigint; resolve: () => void }[] = [];

  constructor(private readonly options: KafkaLogOptions) {
    this.producer = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    // A fresh group each start: no offsets are committed, the log is always replayed whole.
    this.consumer = options.kafka.consumer({
      groupId: `sluice-schema-registry-${randomUUID()}`,
      maxWaitTimeInMs: 250,
      sessionTimeout: 30_000,
    });
  }

  async start(): Promise<void> {
    const { kafka, topic, logger } = this.options;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureTopics(admin, [{ name: topic, partitions: 1, config: { 'cleanup.policy': 'compact' } }]);
    } finally {
      await admin.disconnect();
    }
    const started = Date.now();
    try {
      await retryKafka(() => this.producer.connect());
      await retryKafka(() => this.consumer.connect());
      // A topic created a moment ago may be unknown to the metadata kafkajs fetches: retried.
      await retryKafka(() => this.consumer.subscribe({ topic, fromBeginning: true }));
      await this.consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          this.options.onRecord(message.key, message.value, message.offset);
          this.advance(BigInt(message.offset));
          await Promise.resolve();
        },
      });
      // Like Confluent: write a no-op and read up to it, which proves the whole log before it has
      // been applied (the high watermark alone is not enough: compaction may remove its record).
      await this.append({ keytype: 'NOOP', magic: 0 }, null, 120_000);
    } catch (error) {
      // Nothing of a failed start keeps running (its consumer would retry against a stopped broker).
      await this.stop().catch(() => undefined);
      throw error;
    }
    logger.info({ topic, offset: this.applied.toString(), ms: Date.now() - started }, 'schema registry state restored from its topic');
  }

  /**
   * Writes one record and resolves once it has been read back and applied. A retriable failure
   * (the partition's leader not ready on a fresh topic: NOT_LEADER_FOR_PARTITION after kafkajs'
   * own few retries, a leader move) is sent again with backoff within the timeout: a record that
   * landed twice applies the same state twice.
   */
  async append(key: RegistryKey, value: Buffer | null, timeoutMs = this.options.writeTimeoutMs ?? 30_000): Promise<void> {
    const [metadata] = await retryKafka(
      () =>
        this.producer.send({
          topic: this.options.topic,
          acks: -1,
          messages: [{ key: encodeRecord(key), value }],
        }),
      {
        timeoutMs,
        onRetry: (error, attempt, delayMs) =>
          this.options.logger.warn({ err: error, topic: this.options.topic, attempt, delayMs }, 'schema storage write failed; retrying'),
      },
    );
    const offset = BigInt(metadata?.baseOffset ?? '-1');
    await this.waitFor(offset, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.producer.disconnect();
  }

  private advance(offset: bigint): void {
    this.applied = offset;
    for (let index = this.waiters.length - 1; index >= 0; index--) {
      const waiter = this.waiters[index];
      if (waiter && waiter.offset <= offset) {
        this.waiters.splice(index, 1);
        waiter.resolve();
      }
    }
  }

  private waitFor(offset: bigint, timeoutMs: number): Promise<void> {
    if (offset <= this.applied) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        offset,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new SchemaRegistryError(
            50002,
            `Register operation timed out: offset ${offset} of ${this.options.topic} was not read back within ${timeoutMs} ms`,
            { retriable: true },
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}
