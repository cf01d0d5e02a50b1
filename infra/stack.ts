import path from 'node:path';
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import { SluiceError } from '../common/errors.js';
import {
  DEMO_SOURCES, platformSubjects, registerSchemas, RegistryHttpClient, SchemaRegistryError, startSchemaRegistry, type RunningSchemaRegistry,
} from '../schemas/index.js';
import { platformTopics, sourceTopics } from '../topology/topics.js';
import { choosePort } from './ports.js';
import { createMetricsRegistry, serveOps, type MetricsRegistry, type OpsServer } from '../monitoring/index.js';
import { launchStages, type RunningStages } from '../streams/launch.js';
import { ChdbEngine, serveSql, type SqlServer } from '../offline/index.js';
import { STAGE_NAMES } from '../topology/stages.js';
import { ensureWritableDir, readJsonFile, writeJsonFile } from './datadir.js';
import { KafkaUnreachableError } from './errors.js';
import { checkJava, createKafka, describeCluster, ensureKafkaDistribution, ensureTopics, startLocalBroker, type LocalBroker } from './kafka/index.js';

/** Where each running service listens; `sluice status --json` prints this. */
export interface StackEndpoints {
  /** Bootstrap servers, `host:port[,host:port]`. */
  readonly kafka: string;
  /** The Confluent-compatible schema registry, `http://host:port`. */
  readonly schemaRegistry: string;
  /** Prometheus metrics of the stages (`/health` and `/ready` beside it). */
  readonly metrics: string;
  /** The embedded ClickHouse's HTTP interface (curl, @clickhouse/client, Grafana). */
  readonly clickhouse: string;
}

/** What `sluice up` writes into the data directory so that `sluice status` can find it. */
export interface StackState {
  readonly pid: number;
  readonly startedAt: string;
  readonly dataDir: string;
  readonly endpoints: StackEndpoints;
  readonly kafkaMode: 'local' | 'external';
  /** The local broker's JVM, when there is one. */
  readonly kafkaPid?: number;
}

export interface RunningStack {
  readonly state: StackState;
  /** Settles when a service of the stack stops by itself (the broker crashed, say). */
  readonly failed: Promise<Error>;
  stop(): Promise<void>;
}

export class StackAlreadyRunningError extends SluiceError {
  constructor(pid: number, dataDir: string) {
    super('SLUICE_STACK_RUNNING', `sluice is already running on ${dataDir} (pid ${pid}); stop it first or set SLUICE_DATA_DIR to another folder`, {
      context: { pid, dataDir },
    });
  }
}

export const STACK_FILE = 'stack.json';

/**
 * Starts the local stack on the configured data directory: the Kafka broker (unless
 * KAFKA_BROKERS names a cluster) and the platform's topics. Later services join here.
 */
export async function startStack(config: SluiceConfig, logger: Logger): Promise<RunningStack> {
  const dataDir = await ensureWritableDir(config.dataDir);
  const stackFile = path.join(dataDir, STACK_FILE);
  const previous = await readStackState(dataDir);
  if (previous && previous.pid !== process.pid && isAlive(previous.pid)) throw new StackAlreadyRunningError(previous.pid, dataDir);

  if (config.schemaRegistry.externalUrl) await checkRegistry(config.schemaRegistry.externalUrl);

  let broker: LocalBroker | undefined;
  let brokers: readonly string[];
  if (config.kafka.externalBrokers) {
    brokers = config.kafka.externalBrokers;
    try {
      await describeCluster(brokers, 5000);
    } catch (error) {
      throw new KafkaUnreachableError(brokers, { setting: 'KAFKA_BROKERS', cause: error instanceof KafkaUnreachableError ? error.cause : error });
    }
  } else {
    await checkJava(config.kafka.javaHome);
    const kafkaDir = await ensureWritableDir(path.join(dataDir, 'kafka'));
    const distribution = await ensureKafkaDistribution({
      cacheDir: config.cacheDir,
      version: config.kafka.version,
      javaHome: config.kafka.javaHome,
      logger,
    });
    broker = await startLocalBroker({
      dir: kafkaDir,
      distribution,
      javaHome: config.kafka.javaHome,
      port: config.kafka.port,
      controllerPort: config.kafka.controllerPort,
      heap: config.kafka.heap,
      startTimeoutMs: config.kafka.startTimeoutMs,
      stopTimeoutMs: config.kafka.stopTimeoutMs,
      logger: logger.child({ service: 'kafka' }),
    });
    brokers = broker.brokers;
  }

  let registry: RunningSchemaRegistry | undefined;
  let schemaRegistry: string;
  let metricsRegistry: MetricsRegistry;
  let stages: RunningStages | undefined;
  let ops: OpsServer;
  let offline: ChdbEngine | undefined;
  let sql: SqlServer;
  try {
    const layout = { prefix: config.topicPrefix, partitions: config.defaultPartitions };
    const admin = createKafka({ brokers, clientId: 'sluice-up', logger }).admin();
    await admin.connect();
    try {
      await ensureTopics(admin, [...platformTopics(layout), ...DEMO_SOURCES.flatMap((source) => sourceTopics(source, layout))], logger);
    } finally {
      await admin.disconnect();
    }
    if (config.schemaRegistry.externalUrl) {
      schemaRegistry = config.schemaRegistry.externalUrl;
    } else {
      const savedFile = path.join(dataDir, 'schema-registry.json');
      const saved = await readJsonFile<{ port: number }>(savedFile);
      const port = await choosePort(config.schemaRegistry.port, saved?.port, 'SLUICE_SCHEMA_REGISTRY_PORT');
      registry = await startSchemaRegistry({ brokers, topic: `${config.topicPrefix}_schemas`, host: config.schemaRegistry.host, port, logger });
      await writeJsonFile(savedFile, { port: Number(new URL(registry.url).port) });
      schemaRegistry = registry.url;
    }
    const schemaIds = await registerSchemas(schemaRegistry, platformSubjects(config.topicPrefix), logger);
    metricsRegistry = createMetricsRegistry();
    stages = await launchStages(STAGE_NAMES, { config, brokers, registryUrl: schemaRegistry, schemaIds, metrics: metricsRegistry, logger });
    ops = await serveOps(metricsRegistry, stages.health, config.metrics.host, config.metrics.port);
    // chDB allows one data directory per process: this process owns it and serves SQL to the rest.
    offline = new ChdbEngine(path.join(dataDir, 'clickhouse'));
    const sqlFile = path.join(dataDir, 'sql.json');
    const savedSql = await readJsonFile<{ port: number }>(sqlFile);
    const sqlPort = await choosePort(config.sql.port, savedSql?.port, 'SLUICE_SQL_PORT');
    sql = await serveSql(offline, { host: config.sql.host, port: sqlPort, readonly: !config.sql.writable, logger: logger.child({ service: 'sql' }) });
    await writeJsonFile(sqlFile, { port: Number(new URL(sql.url).port) });
  } catch (error) {
    await offline?.close();
    await stages?.stop();
    await registry?.stop();
    await broker?.stop();
    throw error;
  }

  const state: StackState = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    dataDir,
    endpoints: { kafka: brokers.join(','), schemaRegistry, metrics: `${ops.url}/metrics`, clickhouse: sql.url },
    kafkaMode: broker ? 'local' : 'external',
    ...(broker ? { kafkaPid: broker.pid } : {}),
  };
  await writeJsonFile(stackFile, state);

  let stopping = false;
  const brokerFailed = broker
    ? broker.exited.then((code) => new Error(`the local Kafka broker exited unexpectedly (code ${code})`))
    : new Promise<Error>(() => undefined);
  const running = stages;
  const failed = Promise.race([brokerFailed, running.failed]);
  return {
    state,
    failed: failed.then((error) => {
      if (stopping) return new Promise<Error>(() => undefined);
      return error;
    }),
    async stop() {
      stopping = true;
      await fs.rm(stackFile, { force: true });
      await running.stop();
      await ops.close();
      await sql.close();
      await offline.close();
      await registry?.stop();
      await broker?.stop();
    },
  };
}

/** Fails at once when SCHEMA_REGISTRY_URL does not answer like a Confluent registry. */
async function checkRegistry(url: string): Promise<void> {
  try {
    await new RegistryHttpClient(url).call('GET', '/subjects');
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.replace(/^schema registry at \S+ is unreachable: /, '') : String(cause);
    throw new SchemaRegistryError(50001, `cannot reach the schema registry at ${url} (SCHEMA_REGISTRY_URL): ${reason}`, { cause, retriable: true });
  }
}

export async function readStackState(dataDir: string): Promise<StackState | undefined> {
  return readJsonFile<StackState>(path.join(dataDir, STACK_FILE));
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
