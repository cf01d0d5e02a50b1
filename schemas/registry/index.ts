import type { Logger } from 'pino';
import { createKafka } from '../../kafka/index.js';
import type { CompatibilityLevel } from '../compatibility.js';
import { KafkaLog } from './kafka-log.js';
import { serveRegistry } from './server.js';
import { SchemaRegistryService } from './service.js';
import { RegistryState } from './state.js';

export { RegistryState } from './state.js';
export { SchemaRegistryService, parseVersion } from './service.js';
export { serveRegistry, MAX_BODY_BYTES } from './server.js';

export interface SchemaRegistryOptions {
  readonly brokers: readonly string[];
  /** The storage topic, `_schemas` (with the configured prefix). */
  readonly topic: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly defaultLevel?: CompatibilityLevel;
  readonly logger: Logger;
}

export interface RunningSchemaRegistry {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts sluice's schema registry: replays the storage topic into memory, then serves the
 * Confluent REST API. One writer per storage topic (run one registry per cluster, as sluice up does).
 */
export async function startSchemaRegistry(options: SchemaRegistryOptions): Promise<RunningSchemaRegistry> {
  const logger = options.logger.child({ service: 'schema-registry' });
  const state = new RegistryState(options.defaultLevel ?? 'BACKWARD');
  const log = new KafkaLog({
    kafka: createKafka({ brokers: options.brokers, clientId: 'sluice-schema-registry', logger }),
    topic: options.topic,
    logger,
    onRecord: (key, value, offset) => {
      const skipped = state.apply(key, value, offset);
      if (skipped)
        logger.warn(
          { topic: options.topic, partition: 0, offset: skipped.offset, reason: skipped.reason },
          'skipped a record of the schema storage topic',
        );
    },
  });
  await log.start();
  const service = new SchemaRegistryService(state, (key, value) => log.append(key, value));
  let server;
  try {
    server = await serveRegistry(service, { host: options.host, port: options.port, logger });
  } catch (error) {
    await log.stop();
    throw error;
  }
  logger.info({ url: server.url, topic: options.topic }, 'schema registry listening');
  const running = server;
  return {
    url: running.url,
    async stop() {
      await running.close();
      await log.stop();
    },
  };
}
