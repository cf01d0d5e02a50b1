import type { Logger } from 'pino';
import { assertBindable } from '../../common/auth.js';
import { createKafka } from '../../kafka/index.js';
import type { CompatibilityLevel } from '../compatibility.js';
import { consumerGroupUsage } from './in-use.js';
import { KafkaLog } from './kafka-log.js';
import { serveRegistry } from './server.js';
import { SchemaRegistryService } from './service.js';
import { RegistryState } from './state.js';

export { RegistryState } from './state.js';
export { SchemaRegistryService, parseVersion } from './service.js';
export { serveRegistry, MAX_BODY_BYTES } from './server.js';
export { consumerGroupUsage, topicOfSubject, type SubjectUsage } from './in-use.js';

export interface SchemaRegistryOptions {
  readonly brokers: readonly string[];
  /** The storage topic, `_schemas` (with the configured prefix). */
  readonly topic: string;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly defaultLevel?: CompatibilityLevel;
  /** Tokens that authorize changes (SLUICE_REGISTRY_AUTH_TOKEN); none: open, loopback only. */
  readonly tokens?: readonly string[];
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
  assertBindable('the schema registry', options.host, options.tokens ?? [], 'SLUICE_SCHEMA_REGISTRY_HOST', 'SLUICE_REGISTRY_AUTH_TOKEN');
  const state = new RegistryState(options.defaultLevel ?? 'BACKWARD');
  const kafka = createKafka({ brokers: options.brokers, clientId: 'sluice-schema-registry', logger });
  const log = new KafkaLog({
    kafka,
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
  // Deletes of a subject that running consumers read need ?force=true (Kafka says who reads it).
  const usage = consumerGroupUsage(kafka);
  const service = new SchemaRegistryService(state, (key, value) => log.append(key, value), usage.usage);
  let server;
  try {
    server = await serveRegistry(service, {
      host: options.host,
      port: options.port,
      logger,
      ...(options.tokens ? { tokens: options.tokens } : {}),
    });
  } catch (error) {
    await usage.close();
    await log.stop();
    throw error;
  }
  logger.info({ url: server.url, topic: options.topic }, 'schema registry listening');
  const running = server;
  return {
    url: running.url,
    async stop() {
      await running.close();
      await usage.close();
      await log.stop();
    },
  };
}
