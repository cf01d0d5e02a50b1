import { describe, expect, it } from 'vitest';
import { retriedErrorType } from './client.js';

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
