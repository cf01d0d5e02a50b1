import { describe, expect, it } from 'vitest';
import { TopicMismatchError } from './errors.js';
import { validateTopicSpecs } from './topics.js';
import { platformTopics, sourceTopics } from '../topology/topics.js';

describe('validateTopicSpecs', () => {
  it('accepts the platform and source topics', () => {
    const layout = { prefix: 'staging.', partitions: 6 };
    expect(() => validateTopicSpecs([...platformTopics(layout), ...sourceTopics('transactions', layout)])).not.toThrow();
  });

  it.each([
    [[{ name: 'has space', partitions: 1 }], /not a legal Kafka topic name/],
    [[{ name: '..', partitions: 1 }], /not a legal Kafka topic name/],
    [[{ name: 'x'.repeat(250), partitions: 1 }], /not a legal Kafka topic name/],
    [
      [
        { name: 'a', partitions: 1 },
        { name: 'a', partitions: 2 },
      ],
      /declared twice/,
    ],
    [[{ name: 'a', partitions: 0 }], /positive integer/],
    [[{ name: 'a', partitions: 1.5 }], /positive integer/],
  ])('rejects %j', (specs, message) => {
    expect(() => validateTopicSpecs(specs)).toThrow(TopicMismatchError);
    expect(() => validateTopicSpecs(specs)).toThrow(message);
  });
});

describe('platformTopics', () => {
  it('compacts the registries and the schema storage, and prefixes every name', () => {
    const topics = platformTopics({ prefix: 'p.', partitions: 3 });
    const byName = new Map(topics.map((topic) => [topic.name, topic]));
    for (const name of ['p._schemas', 'p.registry.features', 'p.registry.models', 'p.registry.experiments']) {
      expect(byName.get(name)?.config?.['cleanup.policy']).toBe('compact');
      expect(byName.get(name)?.partitions).toBe(1);
    }
    expect(byName.get('p.dlq')?.partitions).toBe(3);
    expect(topics.every((topic) => topic.name.startsWith('p.'))).toBe(true);
  });
});
