import { ClickHouseContainer } from '@testcontainers/clickhouse';
import { KafkaContainer } from '@testcontainers/kafka';
import { getContainerRuntimeClient } from 'testcontainers';

/**
 * testcontainers' Kafka and ClickHouse modules, for machines with a Docker engine. Ours have none,
 * so the default remains the local broker and embedded ClickHouse; SLUICE_TEST_CONTAINERS=1 asks
 * for containers, and the tests that need Docker are skipped (reported so) when it is absent.
 */
export const KAFKA_IMAGE = 'confluentinc/cp-kafka:7.9.0';
export const CLICKHOUSE_IMAGE = 'clickhouse/clickhouse-server:25.8';

/** The variable that switches the integration tests to containers (a test setting, not sluice's). */
export const CONTAINERS_VARIABLE = 'SLUICE_TEST_CONTAINERS';

export function containersRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[CONTAINERS_VARIABLE] === '1';
}

/** Whether testcontainers finds a container runtime (Docker, or Podman through its socket). */
export async function dockerAvailable(): Promise<boolean> {
  try {
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

export interface RunningContainer<T> {
  readonly value: T;
  stop(): Promise<void>;
}

/** A single-node KRaft Kafka; its bootstrap servers as seen from this machine. */
export async function startKafkaContainer(): Promise<RunningContainer<string[]>> {
  const started = await new KafkaContainer(KAFKA_IMAGE).withKraft().start();
  return {
    value: [`${started.getHost()}:${started.getMappedPort(9093)}`],
    stop: async () => {
      await started.stop();
    },
  };
}

/** A ClickHouse server; its URL in the form CLICKHOUSE_URL takes (`http://user:password@host:port/database`). */
export async function startClickHouseContainer(): Promise<RunningContainer<string>> {
  const started = await new ClickHouseContainer(CLICKHOUSE_IMAGE).start();
  return {
    value: started.getConnectionUrl(),
    stop: async () => {
      await started.stop();
    },
  };
}
