import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { cleanEnv, runSluice, spawnSluice, waitUntilStderr } from './tail-helpers.js';
import { createTopic, testKafka, uniqueName } from '../helpers.js';

describe('sluice tail --max', () => {
  const kafka = testKafka('sluice-it-tail');
  const topic = uniqueName('tail');
  let registry: RunningSchemaRegistry;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const admin = kafka.admin();
    await admin.connect();
    await createTopic(admin, topic, 3);
    await admin.disconnect();
    // Five records, the last three in a transaction: its marker ends a partition.
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [
        { key: 'a', value: '{"n":1}' },
        { key: 'b', value: '{"n":2}' },
      ],
    });
    await producer.disconnect();
    const transactional = kafka.producer({ transactionalId: uniqueName('tail-tx'), idempotent: true, maxInFlightRequests: 1 });
    await transactional.connect();
    const transaction = await transactional.transaction();
    await transaction.send({
      topic,
      messages: [
        { key: 'c', value: '{"n":3}' },
        { key: 'd', value: '{"n":4}' },
        { key: 'e', value: '{"n":5}' },
      ],
    });
    await transaction.commit();
    await transactional.disconnect();
    registry = await startSchemaRegistry({
      brokers: inject('brokers'),
      topic: `${topic}_schemas`,
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
    });
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-tail-'));
    env = cleanEnv({
      SLUICE_DATA_DIR: dataDir,
      KAFKA_BROKERS: inject('brokers').join(','),
      SCHEMA_REGISTRY_URL: registry.url,
      SLUICE_LOG_LEVEL: 'warn',
    });
  });

  afterAll(async () => {
    await registry.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('ends at the end of the topic when it holds fewer records than --max, and says so', async () => {
    const result = await runSluice(['tail', topic, '--from-beginning', '--max', '20'], env, 90_000);
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines.map((line) => (JSON.parse(line) as { value: string }).value).sort()).toEqual([
      '{"n":1}',
      '{"n":2}',
      '{"n":3}',
      '{"n":4}',
      '{"n":5}',
    ]);
    expect(result.stderr).toMatch(new RegExp(`reached the end of ${topic} after 5 record\\(s\\), fewer than --max 20`));
  });

  it('stops after --max records when the topic holds more', async () => {
    const result = await runSluice(['tail', topic, '--from-beginning', '--max', '2'], env, 90_000);
    expect(result.code).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(2);
    expect(result.stderr).not.toMatch(/reached the end/);
  });

  it('says it is waiting when following new records, and ends after --max of them', async () => {
    const proc = spawnSluice(['tail', topic, '--max', '1'], env);
    try {
      await waitUntilStderr(proc, /waiting for new records on/, 90_000);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic, messages: [{ key: 'f', value: '{"n":6}' }] });
      await producer.disconnect();
      expect(await proc.exited).toMatchObject({ code: 0 });
      expect(
        proc
          .stdout()
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { value: string }).value),
      ).toEqual(['{"n":6}']);
    } finally {
      proc.child.kill('SIGKILL');
    }
  });

  it('refuses a --max that is not a positive whole number', async () => {
    const result = await runSluice(['tail', topic, '--max', 'lots'], env, 60_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--max must be a positive whole number/);
  });
});
