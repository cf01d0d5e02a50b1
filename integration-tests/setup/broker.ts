import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import { startEphemeralKafka } from '../../infra/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap servers of the broker every integration test shares. */
    brokers: string[];
  }
}

/**
 * Starts one real local broker for the integration tests (or uses KAFKA_BROKERS) in a temporary
 * data directory. On a fresh clone this fetches the broker's jars with Maven first.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const config = loadConfig();
  const logger = createLogger(process.env.SLUICE_LOG_LEVEL === undefined ? 'warn' : config.logLevel, 'integration-broker');
  const kafka = await startEphemeralKafka(config, logger);
  project.provide('brokers', [...kafka.brokers]);
  return () => kafka.stop();
}
