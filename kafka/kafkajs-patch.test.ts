import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * Our patch of kafkajs' produce path (patches/kafkajs+2.2.4.patch: varints written in place,
 * one buffer per record, large batches taken into a request by reference, timestamps in one pass,
 * murmur2 in 32-bit integers). The wire bytes must stay what Kafka expects:
 * varints are checked against an independent BigInt encoder, and records and whole produce
 * requests are read back with kafkajs' own decoders. (The broker checks the rest: every
 * integration test produces through this code.)
 */
const require = createRequire(import.meta.url);

interface EncoderInstance {
  buffer: Buffer;
  size(): number;
  pieces(): Buffer[];
  writeVarInt(value: number): EncoderInstance;
  writeUVarInt(value: number): EncoderInstance;
  writeVarLong(value: number | string | bigint): EncoderInstance;
}
interface EncoderClass {
  new (initialSize?: number): EncoderInstance;
  sizeOfVarLong(value: number): number;
}
interface DecoderInstance {
  readonly offset: number;
  readVarLong(): { toString(): string };
  readSafeVarLong(): number | { toString(): string };
  readInt32(): number;
  readInt8(): number;
  readInt64(): { toString(): string };
  readInt16(): number;
  readString(): string;
  readArray<T>(reader: (decoder: DecoderInstance) => T): T[];
  readBytes(): Buffer;
  canReadBytes(length: number): boolean;
}
interface DecodedRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, Buffer | Buffer[]>;
  readonly offset: string;
  readonly timestamp: string;
}
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- kafkajs' internals have no types; the interfaces above say what is used
const Encoder: EncoderClass = require('kafkajs/src/protocol/encoder');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const Decoder: new (buffer: Buffer) => DecoderInstance = require('kafkajs/src/protocol/decoder');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const Record: (record: object) => EncoderInstance = require('kafkajs/src/protocol/recordBatch/record/v0');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const decodeRecord: (
  decoder: DecoderInstance,
  context: object,
) => DecodedRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const decodeRecordBatch: (decoder: DecoderInstance) => Promise<{
  firstTimestamp: string;
  maxTimestamp: string;
  records: DecodedRecord[];
}> = require('kafkajs/src/protocol/recordBatch/v0/decoder');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const produceV3: (request: object) => { encode(): Promise<EncoderInstance> } = require('kafkajs/src/protocol/requests/produce/v3/request');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const wrapRequest: (request: {
  correlationId: number;
  clientId: string;
  request: { apiKey: number; apiVersion: number; encode(): Promise<EncoderInstance> };
}) => Promise<EncoderInstance> = require('kafkajs/src/protocol/request');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const murmur2: (key: string | Buffer) => number = require('kafkajs/src/producer/partitioners/default/murmur2');
// eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- as above
const defaultPartitioner: () => (args: {
  topic: string;
  partitionMetadata: { partitionId: number; leader: number }[];
  message: object;
}) => number = require('kafkajs/src/producer/partitioners/default');

/** Zig-zag LEB128 of a signed 64-bit value, written out with BigInt (the reference). */
function referenceVarLong(value: bigint): Buffer {
  let zigZag = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n));
  const bytes: number[] = [];
  while (zigZag >= 128n) {
    bytes.push(Number(zigZag & 127n) | 128);
    zigZag >>= 7n;
  }
  bytes.push(Number(zigZag));
  return Buffer.from(bytes);
}

function samples(): number[] {
  const values = [0, 1, -1, 63, 64, -64, -65, 127, 128, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 35, -(2 ** 40), 2 ** 52, -(2 ** 52)];
  let seed = 7;
  for (let index = 0; index < 2_000; index++) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    const magnitude = 2 ** (seed % 53);
    values.push(Math.round(((seed / 2 ** 31) * 2 - 1) * magnitude));
  }
  return values;
}

describe('the patched kafkajs produce encoding', () => {
  it('writes varlongs as the reference does, with the Long path beyond ±2^52', () => {
    for (const value of [...samples(), 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER]) {
      const encoded = new Encoder().writeVarLong(value).buffer;
      expect(encoded.toString('hex'), String(value)).toBe(referenceVarLong(BigInt(value)).toString('hex'));
      expect(Encoder.sizeOfVarLong(value), String(value)).toBe(encoded.length);
    }
    expect(new Encoder().writeVarLong('-9223372036854775808').buffer.toString('hex')).toBe(
      referenceVarLong(-9223372036854775808n).toString('hex'),
    );
  });

  it('writes varints as the reference does, several into one buffer', () => {
    const values = samples().filter((value) => value >= -(2 ** 31) && value < 2 ** 31);
    const encoder = new Encoder(1);
    for (const value of values) encoder.writeVarInt(value);
    expect(encoder.buffer.toString('hex')).toBe(Buffer.concat(values.map((value) => referenceVarLong(BigInt(value)))).toString('hex'));
  });

  it('encodes records that kafkajs decodes back: keys, values, headers (repeated, string and bytes)', () => {
    const cases = [
      {
        key: Buffer.from('card-1'),
        value: Buffer.from('{"amount":12.5}'),
        headers: { 'sluice.event_id': 'e-1', trace: Buffer.from([0, 255]) },
      },
      { key: null, value: null, headers: {} },
      { key: 'ключ', value: 'значение'.repeat(300), headers: { multi: ['a', 'b', 'c'] } },
      { key: Buffer.alloc(0), value: Buffer.alloc(70_000, 7) },
      {
        key: 'k',
        value: 'v',
        // Own properties only: an inherited one is not a header.
        headers: Object.assign(Object.create({ inherited: 'not a header' }) as Record<string, string | (string | Buffer)[]>, {
          single: 'x',
          '2': 'two',
          multi: [Buffer.from([1]), 'y'],
        }),
      },
    ];
    for (const [index, record] of cases.entries()) {
      const writer = Record({ ...record, offsetDelta: index * 1_000, timestampDelta: index * -123_456_789 });
      const encoded = writer.buffer;
      expect(encoded.length, `record ${index}`).toBe(writer.size());
      const decoder = new Decoder(encoded);
      decoder.readVarLong(); // the record's length (the batch decoder reads it likewise)
      const decoded = decodeRecord(decoder, { firstOffset: '100', firstTimestamp: '1700000000000', magicByte: 2 });
      expect(decoder.offset, `record ${index}`).toBe(encoded.length);
      expect(decoded.offset).toBe(String(100 + index * 1_000));
      expect(decoded.timestamp).toBe(String(1_700_000_000_000 - index * 123_456_789));
      const asBuffer = (value: Buffer | string | null) => (value === null ? null : Buffer.from(value));
      expect(decoded.key).toEqual(asBuffer(record.key));
      expect(decoded.value).toEqual(asBuffer(record.value));
      const expected = Object.fromEntries(
        Object.entries(record.headers ?? {}).map(([name, value]) => [
          name,
          Array.isArray(value) ? value.map((item) => Buffer.from(item)) : Buffer.from(value),
        ]),
      );
      expect(decoded.headers).toEqual(expected);
    }
  });

  it('reads varlongs back as numbers while exact and as Longs beyond, so offsets and timestamps near 2^53 stay exact', () => {
    const large = ['9007199254740993', '-9007199254740993', '9223372036854775807', '-9223372036854775808'];
    for (const value of [...samples(), 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER, ...large]) {
      const encoded = referenceVarLong(BigInt(value));
      const decoder = new Decoder(Buffer.concat([encoded, Buffer.from([1])]));
      expect(String(decoder.readSafeVarLong()), String(value)).toBe(BigInt(value).toString());
      expect(decoder.readInt8(), String(value)).toBe(1); // read exactly the varlong's bytes
    }
    const record = Record({ key: 'k', value: 'v', offsetDelta: 5, timestampDelta: 7 }).buffer;
    for (const [firstOffset, offset] of [
      ['9007199254740990', '9007199254740995'],
      ['9223372036854775800', '9223372036854775805'],
      ['-1', '4'],
    ] as const) {
      const decoder = new Decoder(record);
      decoder.readVarLong();
      const decoded = decodeRecord(decoder, { firstOffset, firstTimestamp: '9007199254740990', magicByte: 2 });
      expect(decoded.offset).toBe(offset);
      expect(decoded.timestamp).toBe('9007199254740997');
    }
  });

  it('encodes a produce request whose batch holds every record, with the first and largest timestamps', async () => {
    const timestamps = ['1700000000500', undefined, '1700000000100', '1700000009000', '1700000000300'];
    const messages = timestamps.map((timestamp, index) => ({
      key: `k${index}`,
      value: `v${index}`,
      headers: { n: String(index) },
      ...(timestamp === undefined ? {} : { timestamp }),
    }));
    const before = Date.now();
    const request = await produceV3({
      acks: -1,
      timeout: 1_000,
      transactionalId: 'tx',
      topicData: [{ topic: 'events', partitions: [{ partition: 3, firstSequence: 0, messages }] }],
    }).encode();
    const after = Date.now();
    const decoder = new Decoder(request.buffer);
    expect(decoder.readString()).toBe('tx');
    expect(decoder.readInt16()).toBe(-1);
    expect(decoder.readInt32()).toBe(1_000);
    const [topic] = decoder.readArray((topicDecoder) => {
      const name = topicDecoder.readString();
      const partitions = topicDecoder.readArray((partitionDecoder) => ({
        partition: partitionDecoder.readInt32(),
        batch: partitionDecoder.readBytes(),
      }));
      return { name, partitions };
    });
    expect(topic?.name).toBe('events');
    expect(topic?.partitions.map(({ partition }) => partition)).toEqual([3]);
    const batch = await decodeRecordBatch(new Decoder(topic?.partitions[0]?.batch ?? Buffer.alloc(0)));
    expect([batch.firstTimestamp, batch.maxTimestamp]).toEqual(['1700000000100', '1700000009000']);
    expect(batch.records.map((record) => record.value?.toString())).toEqual(messages.map((message) => message.value));
    expect(batch.records.map((record) => record.headers.n?.toString())).toEqual(messages.map((_, index) => String(index)));
    expect(batch.records.map((record) => record.offset)).toEqual(['0', '1', '2', '3', '4']);
    const [first, second, third] = batch.records;
    expect(first?.timestamp).toBe('1700000000500');
    expect(third?.timestamp).toBe('1700000000100');
    // A message without a timestamp gets the time of encoding.
    expect(Number(second?.timestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(second?.timestamp)).toBeLessThanOrEqual(after);
  });

  it('takes large record batches into the request by reference: the pieces are the bytes of one buffer, and each batch checks out', async () => {
    // Two batches past the size taken by reference (16 KiB), one below it, over two topics.
    const messagesOf = (count: number, size: number): { key: string; value: Buffer }[] =>
      Array.from({ length: count }, (_, index) => ({ key: `k${index}`, value: Buffer.alloc(size, index % 251) }));
    const topicData = [
      {
        topic: 'rows',
        partitions: [
          { partition: 0, firstSequence: 0, messages: messagesOf(400, 120) },
          { partition: 1, firstSequence: 0, messages: messagesOf(3, 10) },
        ],
      },
      { topic: 'changelog', partitions: [{ partition: 5, firstSequence: 0, messages: messagesOf(90, 1_000) }] },
    ];
    const payload = await produceV3({ acks: -1, timeout: 1_000, transactionalId: 'tx', topicData }).encode();
    const request = await wrapRequest({
      correlationId: 7,
      clientId: 'sluice',
      request: { apiKey: 0, apiVersion: 3, encode: () => Promise.resolve(payload) },
    });
    const pieces = request.pieces();
    // The large batches are pieces of their own (not copied into one buffer).
    expect(pieces.length).toBeGreaterThanOrEqual(4);
    const whole = Buffer.concat(pieces);
    expect(whole.equals(request.buffer)).toBe(true);
    expect(request.size()).toBe(whole.length);
    // The size prefix, the header, then the produce request.
    const decoder = new Decoder(whole);
    expect(decoder.readInt32()).toBe(whole.length - 4);
    expect([decoder.readInt16(), decoder.readInt16(), decoder.readInt32(), decoder.readString()]).toEqual([0, 3, 7, 'sluice']);
    expect([decoder.readString(), decoder.readInt16(), decoder.readInt32()]).toEqual(['tx', -1, 1_000]);
    const topics = decoder.readArray((topicDecoder) => ({
      name: topicDecoder.readString(),
      partitions: topicDecoder.readArray((partitionDecoder) => ({
        partition: partitionDecoder.readInt32(),
        batch: partitionDecoder.readBytes(),
      })),
    }));
    expect(topics.map(({ name, partitions }) => [name, partitions.map(({ partition }) => partition)])).toEqual([
      ['rows', [0, 1]],
      ['changelog', [5]],
    ]);
    const crc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number;
    for (const [topicIndex, { partitions }] of topics.entries()) {
      for (const [partitionIndex, { batch }] of partitions.entries()) {
        // Base offset (8), length (4), leader epoch (4), magic (1), CRC-32C (4) of the rest.
        expect(batch.readInt32BE(8)).toBe(batch.length - 12);
        expect(batch.readUInt32BE(17)).toBe(crc32c(batch.subarray(21)));
        const sent = topicData[topicIndex]?.partitions[partitionIndex]?.messages ?? [];
        const decoded = await decodeRecordBatch(new Decoder(batch));
        expect(decoded.records.map((record) => record.key?.toString())).toEqual(sent.map((message) => message.key));
        expect(decoded.records.every((record, index) => record.value?.equals(sent[index]?.value ?? Buffer.alloc(0)))).toBe(true);
      }
    }
  });

  it("hashes keys as Kafka's Java client does (its own murmur2 test vectors), so partitions agree with every other client", () => {
    const vectors: [string | Buffer, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      [Buffer.from('abc'), 479470107],
    ];
    for (const [key, hash] of vectors) expect(murmur2(key), String(key)).toBe(hash);
    const partitionMetadata = [0, 1, 2, 3, 4, 5].map((partitionId) => ({ partitionId, leader: partitionId === 2 ? -1 : 0 }));
    const partition = defaultPartitioner();
    // An explicit partition wins; a key picks (positive hash) mod partitions, leaderless ones included.
    expect(partition({ topic: 't', partitionMetadata, message: { key: 'foobar', partition: 4 } })).toBe(4);
    expect(partition({ topic: 't', partitionMetadata, message: { key: 'foobar' } })).toBe((-790332482 & 0x7fffffff) % 6);
    // No key: round robin over the partitions with a leader.
    const unkeyed = Array.from({ length: 12 }, () => partition({ topic: 't', partitionMetadata, message: {} }));
    expect(new Set(unkeyed)).toEqual(new Set([0, 1, 3, 4, 5]));
  });
});

/**
 * The transaction manager keeps the coordinators it found (the patch). A multi-broker cluster
 * whose coordinator moves cannot run here, so this drives kafkajs' own transaction manager over
 * a scripted cluster: which broker answers, and when one says it is no longer the coordinator.
 * (integration-tests/kafka/transactions.test.ts runs it against the real broker.)
 */
describe('the patched kafkajs transaction manager', () => {
  interface ProtocolError extends Error {
    readonly type: string;
  }
  type Request = (payload: unknown) => Promise<unknown>;
  const createEosManager = require('kafkajs/src/producer/eosManager/index.js') as (options: {
    logger: unknown;
    cluster: unknown;
    transactional: boolean;
    transactionalId: string;
    retry?: unknown;
  }) => {
    initProducerId(): Promise<void>;
    beginTransaction(): void;
    addPartitionsToTransaction(topics: { topic: string; partitions: { partition: number }[] }[]): Promise<void>;
    sendOffsets(options: { consumerGroupId: string; topics: unknown[] }): Promise<void>;
    commit(): Promise<void>;
  };
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode: (code: number) => ProtocolError };
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

  /** A broker that records its requests; `failNext` makes its next request of a kind answer with that error code. */
  const broker = (name: string, log: string[]) => {
    const failNext = new Map<string, number>();
    let connected = true;
    const request =
      (api: string): Request =>
      () => {
        log.push(`${name}:${api}`);
        const code = failNext.get(api);
        failNext.delete(api);
        return code === undefined ? Promise.resolve({ producerId: 7, producerEpoch: 1 }) : Promise.reject(createErrorFromCode(code));
      };
    return {
      failNext,
      disconnect: () => (connected = false),
      isConnected: () => connected,
      initProducerId: request('InitProducerId'),
      addPartitionsToTxn: request('AddPartitionsToTxn'),
      addOffsetsToTxn: request('AddOffsetsToTxn'),
      txnOffsetCommit: request('TxnOffsetCommit'),
      endTxn: request('EndTxn'),
    };
  };

  it('looks a coordinator up once, again after "not the coordinator" (resending that request) or a closed connection', async () => {
    const log: string[] = [];
    const first = broker('a', log);
    const second = broker('b', log);
    let coordinator = first;
    const cluster = {
      retry: { retries: 2, initialRetryTime: 1 },
      refreshMetadataIfNecessary: () => Promise.resolve(),
      findGroupCoordinator: ({ coordinatorType }: { coordinatorType: number }) => {
        log.push(`lookup:${coordinatorType}`);
        return Promise.resolve(coordinator);
      },
    };
    const manager = createEosManager({ logger: quiet, cluster, transactional: true, transactionalId: 'tx' });
    const transaction = async (): Promise<void> => {
      manager.beginTransaction();
      await manager.addPartitionsToTransaction([{ topic: 't', partitions: [{ partition: 0 }] }]);
      await manager.sendOffsets({ consumerGroupId: 'g', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '1' }] }] });
      await manager.commit();
    };
    await manager.initProducerId();
    await transaction();
    await transaction();
    // 1 = the transaction coordinator, 0 = the group's: each found once for both transactions.
    expect(log.filter((entry) => entry.startsWith('lookup'))).toEqual(['lookup:1', 'lookup:0']);
    expect(log.filter((entry) => entry === 'a:EndTxn')).toHaveLength(2);

    // The coordinators move to b; a answers NOT_COORDINATOR (16) to the commit: resent to b at once.
    log.length = 0;
    coordinator = second;
    first.failNext.set('EndTxn', 16);
    first.failNext.set('TxnOffsetCommit', 16);
    await transaction();
    expect(log).toEqual([
      'a:AddPartitionsToTxn',
      'a:AddOffsetsToTxn',
      'a:TxnOffsetCommit',
      'lookup:0',
      'b:TxnOffsetCommit',
      'a:EndTxn',
      'lookup:1',
      'b:EndTxn',
    ]);

    // A closed connection: found again before the request, not after a failure.
    log.length = 0;
    second.disconnect();
    const third = broker('c', log);
    coordinator = third;
    await transaction();
    expect(log).toEqual(['lookup:1', 'c:AddPartitionsToTxn', 'c:AddOffsetsToTxn', 'lookup:0', 'c:TxnOffsetCommit', 'c:EndTxn']);

    // A group coordinator still loading (GROUP_LOAD_IN_PROGRESS, 14): asked again, same coordinator.
    log.length = 0;
    third.failNext.set('TxnOffsetCommit', 14);
    await transaction();
    expect(log).toEqual(['c:AddPartitionsToTxn', 'c:AddOffsetsToTxn', 'c:TxnOffsetCommit', 'c:TxnOffsetCommit', 'c:EndTxn']);

    // Another error (the coordinator's own answer) is the caller's, and keeps the coordinator.
    log.length = 0;
    third.failNext.set('EndTxn', 51); // CONCURRENT_TRANSACTIONS
    await expect(transaction()).rejects.toMatchObject({ type: 'CONCURRENT_TRANSACTIONS' });
    expect(log.filter((entry) => entry.startsWith('lookup'))).toEqual([]);
  });

  it("retries AddOffsetsToTxn answered CONCURRENT_TRANSACTIONS, with the producer's retry settings", async () => {
    const log: string[] = [];
    const coordinator = broker('a', log);
    const cluster = {
      // The cluster's settings would give up at once; the producer's (passed as retry) allow it.
      retry: { retries: 0, initialRetryTime: 1 },
      refreshMetadataIfNecessary: () => Promise.resolve(),
      findGroupCoordinator: () => Promise.resolve(coordinator),
    };
    const manager = createEosManager({
      logger: quiet,
      cluster,
      transactional: true,
      transactionalId: 'tx',
      retry: { retries: 3, initialRetryTime: 1 },
    });
    await manager.initProducerId();
    manager.beginTransaction();
    // The coordinator still writes the previous transaction's markers (51 = CONCURRENT_TRANSACTIONS).
    coordinator.failNext.set('AddOffsetsToTxn', 51);
    await manager.sendOffsets({ consumerGroupId: 'g', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '1' }] }] });
    await manager.commit();
    expect(log).toEqual(['a:InitProducerId', 'a:AddOffsetsToTxn', 'a:AddOffsetsToTxn', 'a:TxnOffsetCommit', 'a:EndTxn']);

    // Any other answer is the caller's at once (47 = INVALID_PRODUCER_EPOCH: fenced), not retried.
    log.length = 0;
    manager.beginTransaction();
    coordinator.failNext.set('AddOffsetsToTxn', 47);
    await expect(
      manager.sendOffsets({ consumerGroupId: 'g', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '2' }] }] }),
    ).rejects.toMatchObject({ type: 'INVALID_PRODUCER_EPOCH' });
    expect(log).toEqual(['a:AddOffsetsToTxn']);
  });
});

describe('the patched kafkajs produce retries', () => {
  const createSendMessages = require('kafkajs/src/producer/sendMessages.js') as (
    options: unknown,
  ) => (request: {
    acks: number;
    timeout: number;
    topicMessages: { topic: string; messages: { key: string; value: string; partition: number }[] }[];
  }) => Promise<unknown[]>;
  const createRetry = require('kafkajs/src/retry/index.js') as (options: unknown) => unknown;
  const { createErrorFromCode } = require('kafkajs/src/protocol/error.js') as { createErrorFromCode: (code: number) => Error };
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

  it("waits for every broker's produce before retrying one that failed: none is sent twice", async () => {
    const sent: string[] = [];
    /** Partition p's leader is broker p + 1; broker 1 answers slowly, broker 2 fails its first produce (retriable). */
    let failures = 1;
    const leader = (nodeId: number) => ({
      nodeId,
      produce: async ({ topicData }: { topicData: { topic: string; partitions: { partition: number }[] }[] }) => {
        sent.push(`${nodeId}`);
        if (nodeId === 1) await new Promise((resolve) => setTimeout(resolve, 100));
        if (nodeId === 2 && failures-- > 0) throw createErrorFromCode(7); // REQUEST_TIMED_OUT
        return {
          topics: topicData.map(({ topic, partitions }) => ({
            topicName: topic,
            partitions: partitions.map(({ partition }) => ({ partition, errorCode: 0, baseOffset: '0' })),
          })),
        };
      },
    });
    const brokers = new Map([1, 2].map((nodeId) => [nodeId, leader(nodeId)]));
    const cluster = {
      targetTopics: new Set<string>(),
      isConnected: () => true,
      addMultipleTargetTopics: () => Promise.resolve(),
      refreshMetadata: () => Promise.resolve(),
      refreshMetadataIfNecessary: () => Promise.resolve(),
      findTopicPartitionMetadata: () => [
        { partitionId: 0, leader: 1 },
        { partitionId: 1, leader: 2 },
      ],
      findLeaderForPartitions: (_topic: string, partitions: string[]) =>
        Object.fromEntries(
          [1, 2].map((nodeId) => [nodeId, partitions.filter((partition) => Number(partition) === nodeId - 1).map(Number)]),
        ),
      findBroker: ({ nodeId }: { nodeId: number | string }) => Promise.resolve(brokers.get(Number(nodeId))), // the keys of partitionsPerLeader: strings
      removeBroker: () => undefined,
    };
    const eosManager = {
      acquireBrokerLock: () => Promise.resolve(),
      releaseBrokerLock: () => Promise.resolve(),
      isTransactional: () => false,
      getSequence: () => 0,
      updateSequence: () => undefined,
      getProducerId: () => -1,
      getProducerEpoch: () => 0,
      getTransactionalId: () => undefined,
    };
    const send = createSendMessages({
      logger: quiet,
      cluster,
      partitioner: ({ message }: { message: { partition: number } }) => message.partition,
      eosManager,
      retrier: createRetry({ retries: 3, initialRetryTime: 1 }),
    });
    const responses = await send({
      acks: -1,
      timeout: 1_000,
      topicMessages: [
        {
          topic: 't',
          messages: [
            { key: 'a', value: 'x', partition: 0 },
            { key: 'b', value: 'y', partition: 1 },
          ],
        },
      ],
    });
    // Broker 1 once, broker 2 twice (its retry). Unpatched, broker 1 was sent to again by the retry
    // that began while its first produce was still in flight.
    expect(sent.sort()).toEqual(['1', '2', '2']);
    expect(responses).toHaveLength(2);
  });
});

describe("the patched kafkajs read_committed filter (Kafka's Java consumer's rule)", () => {
  interface FilterMessage {
    readonly offset: string;
    readonly key: Buffer | null;
    readonly isControlRecord: boolean;
    readonly batchContext: { readonly producerId: string; readonly inTransaction: boolean };
  }
  // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- kafkajs' internal module has no types
  const filterAborted: (input: {
    messages: FilterMessage[];
    abortedTransactions?: { firstOffset: string; producerId: string }[];
  }) => FilterMessage[] = require('kafkajs/src/consumer/filterAbortedMessages');

  const data = (offset: number, producerId: string, inTransaction = true): FilterMessage => ({
    offset: String(offset),
    key: Buffer.from('k'),
    isControlRecord: false,
    batchContext: { producerId, inTransaction },
  });
  const marker = (offset: number, producerId: string, kind: 'abort' | 'commit'): FilterMessage => ({
    offset: String(offset),
    key: Buffer.from([0, 0, 0, kind === 'abort' ? 0 : 1]),
    isControlRecord: true,
    batchContext: { producerId, inTransaction: true },
  });
  const kept = (messages: FilterMessage[], abortedTransactions: { firstOffset: string; producerId: string }[]): string[] =>
    filterAborted({ messages, abortedTransactions })
      .filter((message) => !message.isControlRecord)
      .map((message) => message.offset);

  // Producers 1, 2 and 3 interleave: 1 and 2 abort (offsets 0–5 and their markers at 9 and 10), 3 commits.
  const log = [data(0, '1'), data(1, '2'), data(2, '3'), data(3, '1'), data(4, '2'), data(5, '3')];
  const markers = [marker(9, '1', 'abort'), marker(10, '2', 'abort'), marker(11, '3', 'commit')];
  const aborted = [
    { firstOffset: '0', producerId: '1' },
    { firstOffset: '1', producerId: '2' },
  ];

  it('drops every aborted record of a fetch that starts inside two aborted transactions (kafkajs kept producer 2 records)', () => {
    // The fetch starts at offset 4 (producer 2's): both aborted transactions began before its first record.
    expect(kept([...log.slice(4), ...markers], aborted)).toEqual(['5']);
  });

  it('takes the aborted transactions in the order of their first offsets, whatever order the broker lists them in', () => {
    expect(kept([...log, ...markers], [...aborted].reverse())).toEqual(['2', '5']);
  });

  it("keeps a producer's records after its abort marker, and records outside transactions", () => {
    const later = [data(12, '1'), data(13, '7', false), marker(14, '1', 'commit')];
    expect(kept([...log, ...markers, ...later], aborted)).toEqual(['2', '5', '12', '13']);
  });

  it('never takes a data record for an abort marker, even with the key of one (four zero bytes)', () => {
    const zeroKey = { ...data(11, '5'), key: Buffer.from([0, 0, 0, 0]) };
    expect(kept([data(10, '5'), zeroKey, data(12, '5'), marker(13, '5', 'abort')], [{ firstOffset: '10', producerId: '5' }])).toEqual([]);
  });

  it('follows one producer through an abort, a commit and another abort, whatever the list order', () => {
    const sequence = [data(10, '1'), marker(11, '1', 'abort'), data(12, '1'), marker(13, '1', 'commit')];
    const again = [data(14, '1'), marker(15, '1', 'abort'), data(16, '1', false)];
    const listed = [
      { firstOffset: '14', producerId: '1' },
      { firstOffset: '10', producerId: '1' },
    ];
    expect(kept([...sequence, ...again], listed)).toEqual(['12', '16']);
    // A fetch that starts on the first abort marker: the producer's committed records after it are kept.
    expect(kept([...sequence.slice(1), ...again], listed)).toEqual(['12', '16']);
  });

  it("does not end a producer's aborted transaction at a commit marker", () => {
    expect(kept([data(10, '1'), marker(11, '1', 'commit'), data(12, '1')], [{ firstOffset: '10', producerId: '1' }])).toEqual([]);
  });

  it('keeps everything when the broker lists no aborted transaction', () => {
    expect(kept([...log, ...markers], [])).toEqual(['0', '1', '2', '3', '4', '5']);
  });
});

describe('the record batch CRC-32C (native, @node-rs/crc32)', () => {
  const crc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number;
  const tableDriven = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (buffer: Buffer) => number;

  it('gives the check value of the standard and the same unsigned value as kafkajs’ own table-driven code', () => {
    // The CRC-32C check value: "123456789" → 0xE3069283 (RFC 3720, B.4).
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    let seed = 7;
    for (const length of [0, 1, 7, 8, 63, 64, 65, 1_000, 16_384, 100_003]) {
      const bytes = Buffer.alloc(length);
      for (let index = 0; index < length; index++) {
        seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
        bytes[index] = seed & 0xff;
      }
      expect(crc32c(bytes)).toBe(tableDriven(bytes) >>> 0);
      expect(crc32c(bytes)).toBeGreaterThanOrEqual(0);
    }
  });
});
