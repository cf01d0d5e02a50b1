import { describe, expect, it } from 'vitest';
import { isRetriableKafkaError, retryKafka } from './retriable.js';

describe('retriable Kafka client errors', () => {
  it('recognizes retriable errors, also wrapped, and coordinator elections kafkajs gave up on', () => {
    const leaderMoved = Object.assign(new Error('This server is not the leader for that topic-partition'), { retriable: true });
    expect(isRetriableKafkaError(leaderMoved)).toBe(true);
    expect(isRetriableKafkaError(Object.assign(new Error('retries exceeded'), { retriable: false, originalError: leaderMoved }))).toBe(
      true,
    );
    expect(
      isRetriableKafkaError(
        Object.assign(new Error('Failed to find group coordinator'), { name: 'KafkaJSGroupCoordinatorNotFound', retriable: false }),
      ),
    ).toBe(true);
    expect(isRetriableKafkaError(Object.assign(new Error('message too large'), { retriable: false }))).toBe(false);
    expect(isRetriableKafkaError('nope')).toBe(false);
  });

  it('retries until success, and gives up at once on a permanent error', async () => {
    let calls = 0;
    const value = await retryKafka(
      () => (++calls < 3 ? Promise.reject(Object.assign(new Error('not hosted yet'), { retriable: true })) : Promise.resolve('ok')),
      { initialDelayMs: 1, maxDelayMs: 2 },
    );
    expect([value, calls]).toEqual(['ok', 3]);
    await expect(retryKafka(() => Promise.reject(new Error('bad request')), { initialDelayMs: 1 })).rejects.toThrow('bad request');
  });
});
