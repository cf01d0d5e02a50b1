import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import { startLocalBroker } from './broker.js';
import { ensureKafkaDistribution } from './jars.js';
import { checkJava } from './prerequisites.js';

export interface EphemeralKafka {
  readonly brokers: readonly string[];
  /** The broker's process id when it was started here; undefined for KAFKA_BROKERS (benchmarks read its CPU time). */
  readonly pid?: number;
  /** Stops the broker (if we started one) and removes its temporary data. */
  stop(): Promise<void>;
}

/**
 * A throw-away Kafka for tests and benchmarks: KAFKA_BROKERS when set, else a local broker in a
 * temporary folder that is removed on stop.
 */
export async function startEphemeralKafka(
  config: SluiceConfig,
  logger: Logger,
  heap = '768m',
  extraProperties: Readonly<Record<string, string | number>> = {},
): Promise<EphemeralKafka> {
  if (config.kafka.externalBrokers) return { brokers: config.kafka.externalBrokers, stop: () => Promise.resolve() };
  await checkJava(config.kafka.javaHome);
  const distribution = await ensureKafkaDistribution({
    cacheDir: config.cacheDir,
    version: config.kafka.version,
    javaHome: config.kafka.javaHome,
    logger,
  });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-kafka-'));
  try {
    const broker = await startLocalBroker({
      dir,
      distribution,
      javaHome: config.kafka.javaHome,
      port: 0,
      controllerPort: 0,
      heap,
      startTimeoutMs: config.kafka.startTimeoutMs,
      stopTimeoutMs: config.kafka.stopTimeoutMs,
      extraProperties,
      logger,
    });
    return {
      brokers: broker.brokers,
      pid: broker.pid,
      async stop() {
        await broker.stop();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await fs.rm(dir, { recursive: true, force: true });
    throw error;
  }
}
