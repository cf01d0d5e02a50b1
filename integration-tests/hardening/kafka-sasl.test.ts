import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type KafkaSecurity } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { freePort } from '../../common/ports.js';
import { createKafka, describeCluster, useKafkaSecurity } from '../../kafka/client.js';
import { ensureKafkaDistribution, startLocalBroker, type LocalBroker } from '../../kafka/index.js';

/**
 * A broker of its own with a SASL_PLAINTEXT listener (PLAIN), next to the plaintext one its
 * start-up check uses: the SASL settings of the configuration reach kafkajs clients.
 */
describe('Kafka clients with SASL', () => {
  let dir: string;
  let broker: LocalBroker | undefined;
  let sasl: string[];
  const security = (password: string): KafkaSecurity => ({ sasl: { mechanism: 'plain', username: 'sluice', password } });

  beforeAll(async () => {
    const config = loadConfig({ SLUICE_CACHE_DIR: process.env.SLUICE_CACHE_DIR });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-sasl-'));
    const [port, controllerPort, saslPort] = [await freePort(), await freePort(), await freePort()];
    sasl = [`127.0.0.1:${saslPort}`];
    broker = await startLocalBroker({
      dir,
      distribution: await ensureKafkaDistribution({
        cacheDir: config.cacheDir,
        version: config.kafka.version,
        javaHome: config.kafka.javaHome,
        logger: silentLogger(),
      }),
      javaHome: config.kafka.javaHome,
      port,
      controllerPort,
      heap: '256m',
      startTimeoutMs: config.kafka.startTimeoutMs,
      stopTimeoutMs: config.kafka.stopTimeoutMs,
      extraProperties: {
        listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
        'advertised.listeners': `PLAINTEXT://127.0.0.1:${port},SASL_PLAINTEXT://127.0.0.1:${saslPort}`,
        'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT',
        'sasl.enabled.mechanisms': 'PLAIN',
        'listener.name.sasl_plaintext.plain.sasl.jaas.config':
          'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_sluice="sluice-secret";',
      },
      logger: silentLogger(),
    });
  });

  afterAll(async () => {
    useKafkaSecurity(undefined);
    await broker?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('produces and consumes with the configured SASL credentials', async () => {
    const kafka = createKafka({ brokers: sasl, clientId: 'sluice-it-sasl', security: security('sluice-secret') });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: 'secured', numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'secured', messages: [{ value: 'hello' }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: 'sluice-it-sasl' });
    await consumer.connect();
    await consumer.subscribe({ topic: 'secured', fromBeginning: true });
    const received = new Promise<string>((resolve) => {
      void consumer.run({ eachMessage: ({ message }) => Promise.resolve(resolve(message.value?.toString() ?? '')) });
    });
    expect(await received).toBe('hello');
    await consumer.disconnect();
  });

  it('is refused without credentials or with a wrong password', async () => {
    await expect(describeCluster(sasl, 5_000)).rejects.toThrow();
    const wrong = createKafka({
      brokers: sasl,
      clientId: 'sluice-it-sasl-wrong',
      retries: 0,
      security: security('not-the-password'),
    }).admin();
    await expect(wrong.connect()).rejects.toThrow(/SASL PLAIN authentication failed|Authentication failed/i);
  });

  it('gives every client of the process the configured security (useKafkaSecurity)', async () => {
    useKafkaSecurity(security('sluice-secret'));
    try {
      const admin = createKafka({ brokers: sasl, clientId: 'sluice-it-sasl-default' }).admin();
      await admin.connect();
      expect(await admin.listTopics()).toContain('secured');
      await admin.disconnect();
    } finally {
      useKafkaSecurity(undefined);
    }
  });
});
