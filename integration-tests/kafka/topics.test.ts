import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Admin } from 'kafkajs';
import kafkajs from 'kafkajs';
import { ensureTopics, type TopicSpec } from '../../kafka/index.js';
import { testKafka, uniqueName } from '../helpers.js';

const { ConfigResourceTypes } = kafkajs;

describe('ensureTopics against the real broker', () => {
  let admin: Admin;

  beforeAll(async () => {
    admin = testKafka().admin();
    await admin.connect();
  });

  afterAll(async () => {
    await admin.disconnect();
  });

  async function configOf(topic: string, name: string): Promise<string | undefined> {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }],
    });
    return described.resources[0]?.configEntries.find((entry) => entry.configName === name)?.configValue;
  }

  it('creates, then leaves alone, then reconciles partitions and configs, idempotently', async () => {
    const compacted = uniqueName('compacted');
    const plain = uniqueName('plain');
    const specs: TopicSpec[] = [
      { name: compacted, partitions: 1, config: { 'cleanup.policy': 'compact' } },
      { name: plain, partitions: 3, config: { 'retention.ms': '3600000' } },
    ];

    expect(await ensureTopics(admin, specs)).toEqual({ created: [compacted, plain], reconfigured: [], repartitioned: [], unchanged: [] });
    expect(await configOf(compacted, 'cleanup.policy')).toBe('compact');
    expect(await ensureTopics(admin, specs)).toEqual({ created: [], reconfigured: [], repartitioned: [], unchanged: [compacted, plain] });

    const changed: TopicSpec[] = [specs[0]!, { name: plain, partitions: 5, config: { 'retention.ms': '7200000' } }];
    expect(await ensureTopics(admin, changed)).toEqual({
      created: [],
      reconfigured: [plain],
      repartitioned: [plain],
      unchanged: [compacted],
    });
    const metadata = await admin.fetchTopicMetadata({ topics: [plain] });
    expect(metadata.topics[0]?.partitions).toHaveLength(5);
    expect(await configOf(plain, 'retention.ms')).toBe('7200000');

    // Fewer declared partitions than exist cannot be applied; the topic is left as it is.
    const fewer: TopicSpec[] = [{ name: plain, partitions: 2, config: { 'retention.ms': '7200000' } }];
    expect(await ensureTopics(admin, fewer)).toEqual({ created: [], reconfigured: [], repartitioned: [], unchanged: [plain] });
    expect((await admin.fetchTopicMetadata({ topics: [plain] })).topics[0]?.partitions).toHaveLength(5);
  });
});
