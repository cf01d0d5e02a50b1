import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Admin, Kafka } from 'kafkajs';
import { createMetricsRegistry } from '../../common/metrics.js';
import { changelogTopicName, int64Serde, type KeyValueStore } from '../../state/index.js';
import { runStage, type QueryResult } from '../../streams/runtime/index.js';
import { createTopic, testKafka, uniqueName, waitUntil } from '../helpers.js';

describe('restoring from a changelog with foreign bytes in it', () => {
  let kafka: Kafka;
  let admin: Admin;
  let stateDir: string;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-changelog-'));
  });

  afterAll(async () => {
    await admin.disconnect();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('reports each unreadable record with its key, skips it, restores the rest, and serves interactive queries', async () => {
    const input = uniqueName('cl-in');
    const group = uniqueName('cl-group');
    const prefix = `${uniqueName('cl')}.`;
    // The store `counts` of stage `counter`, in the task of sub-topology `<input>`.
    const changelog = changelogTopicName('', group, 'counter.counts', input);
    await createTopic(admin, input, 1);
    await createTopic(admin, `${prefix}dlq`, 1);
    await createTopic(admin, changelog, 1, { 'cleanup.policy': 'compact' });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: changelog,
      messages: [
        { key: 'alpha', value: int64Serde.serialize(5), partition: 0 },
        { key: 'bravo', value: Buffer.from('not an int64'), partition: 0 },
        { key: 'charlie', value: int64Serde.serialize(7), partition: 0 },
        { key: 'delta', value: Buffer.from([1, 2, 3]), partition: 0 },
      ],
    });
    await producer.disconnect();

    const lines: string[] = [];
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const metrics = createMetricsRegistry(false);
    const stage = await runStage<null>(
      {
        name: 'counter',
        inputs: [input],
        decode: () => null,
        stores: [{ name: 'counts', kind: 'key-value', serde: int64Serde }],
        process: async (record, context) => {
          const counts = context.store<KeyValueStore<number>>('counts');
          counts.put(record.key ?? '', ((await counts.get(record.key ?? '')) ?? 0) + 1);
          return [];
        },
      },
      { brokers: inject('brokers'), groupId: group, dlqTopic: `${prefix}dlq`, stateDir, topicPrefix: prefix, metrics, logger },
    );
    try {
      await waitUntil(() => stage.status().ready, 60_000, 'the stage to restore and be ready');
      expect(stage.status().failed).toBe(false);
      expect(Object.fromEntries(await stage.entries<number>('counts'))).toEqual({ alpha: 5, charlie: 7 });
      const skipped = lines.filter((line) => line.includes('skipped a changelog record'));
      expect(skipped).toHaveLength(2);
      expect(skipped.join('\n')).toContain(Buffer.from('bravo').toString('hex'));
      expect(skipped.join('\n')).toContain(Buffer.from('delta').toString('hex'));
      const metric = (await metrics.getSingleMetric('sluice_state_changelog_skipped_total')?.get())?.values[0]?.value;
      expect(metric).toBe(2);

      // Processing goes on from the restored state, and queries read it.
      const more = kafka.producer();
      await more.connect();
      await more.send({
        topic: input,
        messages: [
          { key: 'alpha', value: 'x' },
          { key: 'echo', value: 'x' },
        ],
      });
      await more.disconnect();
      await waitUntil(
        async () => {
          const alpha = await stage.query<number>('counts', 'alpha');
          return alpha.owned && alpha.value === 6;
        },
        30_000,
        'alpha to be counted',
      );
      expect(await stage.query<number>('counts', 'echo')).toEqual({ owned: true, partition: 0, value: 1 });
      expect(await stage.query<number>('counts', 'nobody')).toEqual({ owned: true, partition: 0, value: undefined });
    } finally {
      await stage.stop();
    }
  });

  it('tells which group member owns a key it does not own', async () => {
    const input = uniqueName('owner-in');
    const group = uniqueName('owner-group');
    const prefix = `${uniqueName('owner')}.`;
    await createTopic(admin, input, 2);
    await createTopic(admin, `${prefix}dlq`, 1);
    const definition = {
      name: 'owner',
      inputs: [input],
      decode: () => null,
      stores: [{ name: 'counts', kind: 'key-value' as const, serde: int64Serde }],
      process: () => [],
    };
    const options = (instance: string) => ({
      brokers: inject('brokers'),
      groupId: group,
      dlqTopic: `${prefix}dlq`,
      stateDir: path.join(stateDir, instance),
      topicPrefix: prefix,
      metrics: createMetricsRegistry(false),
      logger: pino({ level: 'silent' }),
    });
    const first = await runStage<null>(definition, options('one'));
    const second = await runStage<null>(definition, options('two'));
    try {
      await waitUntil(
        () =>
          first.status().ready && second.status().ready && first.status().assigned.length === 1 && second.status().assigned.length === 1,
        60_000,
        'both instances to own one partition',
      );
      const keys = Array.from({ length: 20 }, (_, i) => `key-${i}`);
      const answers = await Promise.all(keys.map((key) => first.query<number>('counts', key)));
      const elsewhere = answers.filter((answer): answer is Extract<QueryResult<number>, { owned: false }> => !answer.owned);
      expect(answers.some((answer) => answer.owned)).toBe(true);
      expect(elsewhere.length).toBeGreaterThan(0);
      for (const answer of elsewhere) {
        expect(answer.owner?.memberId).toBeTruthy();
        expect(second.status().assigned).toContain(`${input}:${answer.partition}`);
      }
    } finally {
      await first.stop();
      await second.stop();
    }
  });
});
