import type { Consumer, Kafka, Message, Producer, RecordMetadata, TopicMessages } from 'kafkajs';
import type { OutputRecord } from './record.js';
import { hasKafkaErrorType } from '../../kafka/index.js';

/** Processing guarantees a stage can run under. */
export type Guarantee = 'exactly_once' | 'at_least_once';

/** Where a task's input partition continues: the offset after the last record committed. */
export interface InputOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/**
 * Makes one task's results durable: produces the outputs and records that its inputs are consumed
 * up to the given offsets. Under exactly_once both happen in one Kafka transaction (sent side by
 * side, committed together); under at_least_once the offsets follow the outputs.
 */
export interface PartitionCommitter {
  /** Resolves with where each produced batch landed (topic, partition, first offset). */
  commit(outputs: readonly OutputRecord[], offsets: readonly InputOffset[]): Promise<readonly ProducedBatch[]>;
  close(): Promise<void>;
}

export interface ProducedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly baseOffset: bigint;
  /** Records of this produce request in this partition (known for records sent to an explicit partition). */
  readonly records?: number;
}

/**
 * Sends a commit's records as one or more produce requests; one entry per request and partition
 * (a partition's records may span several requests: each has its own base offset and count).
 */
async function sendInChunks(
  outputs: readonly OutputRecord[],
  send: (messages: TopicMessages[]) => Promise<RecordMetadata[]>,
): Promise<ProducedBatch[]> {
  const produced: ProducedBatch[] = [];
  for (const chunk of requestChunks(outputs)) {
    // Per topic, records per partition (no key string per record).
    const counts = new Map<string, number[]>();
    for (const output of chunk) {
      if (output.partition === undefined) continue;
      let perPartition = counts.get(output.topic);
      if (!perPartition) {
        perPartition = [];
        counts.set(output.topic, perPartition);
      }
      perPartition[output.partition] = (perPartition[output.partition] ?? 0) + 1;
    }
    for (const entry of await send(toTopicMessages(chunk))) {
      const records = counts.get(entry.topicName)?.[entry.partition];
      produced.push({
        topic: entry.topicName,
        partition: entry.partition,
        baseOffset: BigInt(entry.baseOffset ?? '-1'),
        ...(records === undefined ? {} : { records }),
      });
    }
  }
  return produced;
}

export interface CommitterFactory {
  /** A committer for a task this instance now owns; under exactly_once this fences zombies. */
  open(task: string): Promise<PartitionCommitter>;
  close(): Promise<void>;
}

export function toTopicMessages(outputs: readonly OutputRecord[]): TopicMessages[] {
  const byTopic = new Map<string, Message[]>();
  for (const output of outputs) {
    const messages = byTopic.get(output.topic) ?? [];
    const message: Message = { key: output.key, value: output.value };
    if (output.partition !== undefined) message.partition = output.partition;
    // Not copied: kafkajs only reads a message's headers (to size and write them), and a copy per
    // record would live until the request is written.
    if (output.headers) message.headers = output.headers;
    if (output.timestamp !== undefined) message.timestamp = String(output.timestamp);
    messages.push(message);
    byTopic.set(output.topic, messages);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

/**
 * exactly_once: one transactional producer per input partition, with a stable transactional id
 * (`<prefix><group>-<topic>-<partition>`). Opening it on assignment runs InitProducerId, which
 * bumps the epoch and aborts whatever transaction a zombie owner left open, and fences that
 * zombie. Each commit is one transaction: the outputs plus the input offset (sendOffsets), sent
 * side by side, then EndTxn once both are in.
 * kafkajs lacks KIP-447's generation-aware offset commits, so this per-partition id is what
 * fences. A commit that fails leaves an unknown outcome: the caller drops the producer and
 * opens a new one.
 */
export class TransactionalCommitterFactory implements CommitterFactory {
  constructor(
    private readonly kafka: Kafka,
    private readonly groupId: string,
    private readonly transactionalIdPrefix: string,
    private readonly transactionTimeoutMs: number,
  ) {}

  async open(task: string): Promise<PartitionCommitter> {
    const producer = this.kafka.producer({
      transactionalId: `${this.transactionalIdPrefix}${this.groupId}-${task}`,
      idempotent: true,
      // Two: a commit's records and its offsets go out side by side (see commit), and often to one
      // broker. Never two produce requests: a commit sends its requests one after the other, and
      // commits of a task never overlap, so the idempotent sequence numbers stay in order.
      maxInFlightRequests: 2,
      transactionTimeout: this.transactionTimeoutMs,
      // A transaction begun right after the previous commit often meets CONCURRENT_TRANSACTIONS
      // while the coordinator writes the markers; retry within milliseconds, not kafkajs' 300.
      retry: { initialRetryTime: 10, maxRetryTime: 2_000, retries: 20 },
    });
    try {
      await producer.connect();
      // kafkajs runs InitProducerId at the first transaction, not on connect: start (and drop) an
      // empty one now, so the zombie is fenced and its open transaction settled before the caller
      // restores state and reads committed offsets.
      const probe = await producer.transaction();
      await probe.abort();
    } catch (error) {
      // The caller retries with a new producer: this one must not stay connected.
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
    return new TransactionalCommitter(producer, this.groupId);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

class TransactionalCommitter implements PartitionCommitter {
  constructor(
    private readonly producer: Producer,
    private readonly groupId: string,
  ) {}

  async commit(outputs: readonly OutputRecord[], offsets: readonly InputOffset[]): Promise<readonly ProducedBatch[]> {
    const transaction = await this.producer.transaction();
    try {
      // The records and the input offsets travel side by side: AddPartitionsToTxn then Produce
      // beside AddOffsetsToTxn then TxnOffsetCommit (two round trips, not four, before EndTxn).
      // Their order within the transaction does not matter: EndTxn commits or aborts both. Both
      // settle before the transaction ends or aborts, so no request of it is left in flight.
      const [records, positions] = await Promise.allSettled([
        sendInChunks(outputs, (topicMessages) => transaction.sendBatch({ topicMessages, acks: -1 })),
        offsets.length > 0 ? transaction.sendOffsets({ consumerGroupId: this.groupId, topics: offsetsByTopic(offsets) }) : undefined,
      ]);
      if (records.status === 'fulfilled' && positions.status === 'fulfilled') {
        await transaction.commit();
        return records.value;
      }
      // A fence on either side is the one to report: it tells the task that another owner has
      // taken over (it must not reopen and fence that owner in turn).
      const failures = [records, positions].flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
      throw failures.find(isFenced) ?? failures[0];
    } catch (error) {
      if (transaction.isActive()) await transaction.abort().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
  }
}

/**
 * at_least_once: one idempotent producer for the stage; a commit produces the outputs (acks=all)
 * and only then commits the input offset through the consumer group. A crash in between
 * replays the records: duplicates are possible, loss is not.
 */
export class AtLeastOnceCommitterFactory implements CommitterFactory {
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly consumer: Consumer,
  ) {}

  async open(): Promise<PartitionCommitter> {
    const producer = await this.sharedProducer();
    const consumer = this.consumer;
    return {
      async commit(outputs, offsets) {
        const produced = await sendInChunks(outputs, (topicMessages) => producer.sendBatch({ topicMessages, acks: -1 }));
        if (offsets.length > 0) await consumer.commitOffsets(offsets.map(({ topic, partition, offset }) => ({ topic, partition, offset })));
        return produced;
      },
      close: () => Promise.resolve(),
    };
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    this.connecting = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  private sharedProducer(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      this.producer = producer;
      return producer;
    })();
    return this.connecting;
  }
}

function offsetsByTopic(offsets: readonly InputOffset[]): { topic: string; partitions: { partition: number; offset: string }[] }[] {
  const byTopic = new Map<string, { partition: number; offset: string }[]>();
  for (const { topic, partition, offset } of offsets) {
    const list = byTopic.get(topic) ?? [];
    list.push({ partition, offset });
    byTopic.set(topic, list);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

/**
 * Splits a commit's records into produce requests of at most ~768 KiB, so that no partition's
 * record batch can exceed a topic's default `max.message.bytes` (1 MiB) however large the commit
 * is. The requests go out one after the other, inside the same transaction.
 */
const REQUEST_BYTES = 768 * 1024;
export function requestChunks(outputs: readonly OutputRecord[], maxBytes = REQUEST_BYTES): OutputRecord[][] {
  const chunks: OutputRecord[][] = [];
  let chunk: OutputRecord[] = [];
  let bytes = 0;
  for (const output of outputs) {
    const size = sizeOf(output.key) + sizeOf(output.value) + 64;
    if (chunk.length > 0 && bytes + size > maxBytes) {
      chunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(output);
    bytes += size;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

function sizeOf(value: string | Buffer | null): number {
  if (value === null) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/** A commit refused because a newer producer with the same transactional id exists (a new owner fenced this one). */
export function isFenced(error: unknown): boolean {
  return hasKafkaErrorType(error, 'INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED');
}
