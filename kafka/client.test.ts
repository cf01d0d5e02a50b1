import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../common/metrics.js';
import { createKafka, retriedErrorType } from './client.js';
import { registerKafkaClientMetrics } from './client-metrics.js';

describe('kafkajs log lines', () => {
  it('recognizes the errors kafkajs retries itself (logged at debug, counted)', () => {
    expect(
      retriedErrorType(
        'Failed to send messages: The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing',
        { retryCount: 0, retryTime: 11 },
      ),
    ).toBe('CONCURRENT_TRANSACTIONS');
    expect(retriedErrorType('Failed to send messages: This server is not the leader for that topic-partition', { retryCount: 0 })).toBe(
      'NOT_LEADER_FOR_PARTITION',
    );
    expect(retriedErrorType('Restarting the consumer in 300ms', { retryCount: 1, groupId: 'g' })).toBe('CONSUMER_RESTART');
    expect(retriedErrorType('Failed to connect to seed broker, trying another broker from the list: ECONNREFUSED', { retryCount: 2 })).toBe(
      'CONNECTION',
    );
  });

  it('leaves real errors at ERROR level', () => {
    // kafkajs does not retry this one by itself (its table says so); the stage handles it.
    expect(retriedErrorType('Crash: KafkaJSError: The group is rebalancing, so a rejoin is needed', { groupId: 'g' })).toBeUndefined();
    expect(retriedErrorType('Crash: KafkaJSNonRetriableError: Invalid partition', { groupId: 'g', retryCount: undefined })).toBeUndefined();
    expect(retriedErrorType('Error when calling eachBatch', { topic: 't', partition: 0 })).toBeUndefined();
    // Logged inside the retrier, then given up: a fenced producer is news.
    expect(
      retriedErrorType(
        "Failed to send messages: Producer attempted an operation with an old epoch. Either there is a newer producer with the same transactionalId, or the producer's transaction has been expired by the broker",
        { retryCount: 0, retryTime: 300 },
      ),
    ).toBeUndefined();
  });
});

describe('retried kafkajs errors', () => {
  it('go to the debug level and into sluice_kafka_client_retried_errors_total; real errors stay errors', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) },
    );
    const kafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'test', logger });
    const registry = createMetricsRegistry(false);
    registerKafkaClientMetrics(registry);
    kafka.logger().error('Failed to send messages: This server is not the leader for that topic-partition', { retryCount: 0 });
    kafka.logger().error('Failed to send messages: This server is not the leader for that topic-partition', { retryCount: 1 });
    kafka.logger().error('Error when calling eachBatch', { topic: 't' });
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [20, 'Failed to send messages: This server is not the leader for that topic-partition'],
      [20, 'Failed to send messages: This server is not the leader for that topic-partition'],
      [50, 'Error when calling eachBatch'],
    ]);
    expect(await registry.metrics()).toMatch(
      /sluice_kafka_client_retried_errors_total\{namespace="[^"]*",error="NOT_LEADER_FOR_PARTITION"\} 2/,
    );
  });
});
