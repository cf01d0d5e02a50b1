import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../common/config.js';
import { createLogger } from '../../common/logger.js';
import { startEphemeralKafka } from '../../kafka/index.js';
import { containersRequested, CONTAINERS_VARIABLE, dockerAvailable, startKafkaContainer } from './containers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Bootstrap servers of the broker every integration test shares. */
    brokers: string[];
    /** The shortest consumer session the broker accepts (crash tests restart members quickly). */
    minSessionTimeoutMs: number;
  }
}

/**
 * Starts one real local broker for the integration tests (or uses KAFKA_BROKERS) in a temporary
 * data directory. On a fresh clone this fetches the broker's jars with Maven first. With
 * SLUICE_TEST_CONTAINERS=1, a Kafka container from testcontainers' Kafka module instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // SLUICE_TEST_CONTAINERS belongs to the tests, not to sluice's configuration.
  const config = loadConfig(Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== CONTAINERS_VARIABLE)));
  if (containersRequested()) {
    if (!(await dockerAvailable()))
      throw new Error(`${CONTAINERS_VARIABLE}=1 runs the integration tests against containers, but no Docker engine was found`);
    const kafka = await startKafkaContainer();
    project.provide('brokers', kafka.value);
    project.provide('minSessionTimeoutMs', 6_000);
    return () => kafka.stop();
  }
  const logger = createLogger(process.env.SLUICE_LOG_LEVEL === undefined ? 'warn' : config.logLevel, 'integration-broker');
  // Crash tests kill group members; a short minimum session lets the group notice in ~2 s
  // instead of Kafka's default 6 s floor. Only this throw-away broker is configured so.
  const minSessionTimeoutMs = config.kafka.externalBrokers ? 6_000 : 1_000;
  const kafka = await startEphemeralKafka(config, logger, '768m', {
    'group.min.session.timeout.ms': minSessionTimeoutMs,
    // Time retention runs every 5 minutes (the first time 30 s after start) by default, so records
    // stamped with an old time vanished from a test only when a check happened to fall inside it.
    // Checking every 2 s from the start makes such a loss show on every run.
    'log.initial.task.delay.ms': 1_000,
    'log.retention.check.interval.ms': 2_000,
  });
  project.provide('brokers', [...kafka.brokers]);
  project.provide('minSessionTimeoutMs', minSessionTimeoutMs);
  return () => kafka.stop();
}
