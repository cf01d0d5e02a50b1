import path from 'node:path';
import fs from 'node:fs/promises';
import type { Logger } from 'pino';
import type { SluiceConfig } from '../common/config.js';
import { SluiceError } from '../common/errors.js';
import {
  registerSchemas,
  RegistryHttpClient,
  SchemaRegistryError,
  startSchemaRegistry,
  type RunningSchemaRegistry,
} from '../schemas/index.js';
import { platformTopics, sourceTopics } from '../topology/topics.js';
import { choosePort } from '../common/ports.js';
import { createMetricsRegistry, type MetricsRegistry } from '../common/metrics.js';
import { serveOps, type OpsServer } from '../serving/ops-server.js';
import { launch, type Launched } from './launch.js';
import {
  ChdbEngine,
  EmbeddedOfflineStore,
  ensureTables,
  offlineTables,
  RemoteOfflineStore,
  serveSql,
  type OfflineStore,
  type SqlServer,
} from '../offline/index.js';
import { topologySubjects } from './stages.js';
import { isAlive, readStackState, STACK_FILE, type StackState } from './stack-file.js';
import type { LoadedTopology } from './topology.js';
import { featureTopics, predictionTopics } from '../topology/topics.js';
import { OnlineStore, onlineRoutes } from '../serving/online.js';
import { runSink, type RunningSink } from '../streams/sink/stage.js';
import { predictionsTable, shadowPredictionsTable } from '../offline/index.js';
import { ArtifactStore } from '../models/registry.js';
import { predictRoutes } from '../serving/predict-route.js';
import { dashboardRoutes } from '../serving/dashboard/routes.js';
import { tracedRoute } from '../serving/traced-route.js';
import { scrapeAddress, writeScrapeTarget } from '../serving/scrape-target.js';
import { tracingFromConfig, type Tracing } from '../common/tracing-sdk.js';
import { publishFeatureViews } from '../streams/features/registry.js';
import { startDemo, type RunningDemo } from './demo.js';
import { launchMonitoring } from './monitoring.js';
import type { RunningMonitoring } from '../streams/monitoring/index.js';
import type { TrainReport } from '../jobs/train.js';
import { ensureWritableDir, readJsonFile, writeJsonFile } from '../common/files.js';
import { BrokerStartError, KafkaUnreachableError } from '../kafka/errors.js';
import {
  checkJava,
  createKafka,
  describeCluster,
  ensureKafkaDistribution,
  ensureTopics,
  startLocalBroker,
  type LocalBroker,
} from '../kafka/index.js';

export interface RunningStack {
  readonly state: StackState;
  /** Settles when a service of the stack stops by itself (the broker crashed, say). */
  readonly failed: Promise<Error>;
  /**
   * Closes the SQL endpoint and the embedded ClickHouse (idempotent; `stop` does it too). After a
   * failure, call it before `stop`: stopping the Kafka-bound services may outlast the exit bound,
   * and an exit with the embedded engine open can hang in its exit handlers.
   */
  closeEmbedded(): Promise<void>;
  stop(): Promise<void>;
}

export class StackAlreadyRunningError extends SluiceError {
  constructor(pid: number, dataDir: string) {
    super(
      'SLUICE_STACK_RUNNING',
      `sluice is already running on ${dataDir} (pid ${pid}); stop it first or set SLUICE_DATA_DIR to another folder`,
      {
        context: { pid, dataDir },
      },
    );
  }
}

/** The demo `npm start` runs: generated history, then live events, and the first models trained. */
export interface DemoSettings {
  readonly seed: number;
  readonly historyEvents: number;
  readonly historySpanMs: number;
  readonly rate: number;
  readonly driftFrom?: number;
  readonly onTrained?: (report: TrainReport) => void;
}

export interface StackOptions {
  /** The sources, views and models this stack runs. */
  readonly topology: LoadedTopology;
  readonly demo?: DemoSettings;
}

/**
 * Starts the local stack on the configured data directory: the Kafka broker (unless
 * KAFKA_BROKERS names a cluster) and the platform's topics. Later services join here.
 */
export async function startStack(config: SluiceConfig, logger: Logger, stackOptions: StackOptions): Promise<RunningStack> {
  const { topology } = stackOptions;
  const dataDir = await ensureWritableDir(config.dataDir);
  const stackFile = path.join(dataDir, STACK_FILE);
  const previous = await readStackState(dataDir);
  if (previous && previous.pid !== process.pid && isAlive(previous.pid)) throw new StackAlreadyRunningError(previous.pid, dataDir);

  if (config.schemaRegistry.externalUrl) await checkRegistry(config.schemaRegistry.externalUrl);

  let broker: LocalBroker | undefined;
  let kafkaLogDir: string | undefined;
  let brokers: readonly string[];
  if (config.kafka.externalBrokers) {
    brokers = config.kafka.externalBrokers;
    try {
      await describeCluster(brokers, 5000);
    } catch (error) {
      throw new KafkaUnreachableError(brokers, {
        setting: 'KAFKA_BROKERS',
        cause: error instanceof KafkaUnreachableError ? error.cause : error,
      });
    }
  } else {
    await checkJava(config.kafka.javaHome);
    const kafkaDir = await ensureWritableDir(path.join(dataDir, 'kafka'));
    kafkaLogDir = path.join(kafkaDir, 'logs');
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

  // A broker that dies while the rest starts would leave start-up retrying for minutes: fail now.
  // Not when start-up itself failed and stopped it: then that failure is the one to report.
  let stoppingBroker = false;
  const brokerDied = broker
    ? broker.exited.then((code): Promise<never> => {
        if (stoppingBroker) return new Promise<never>(() => undefined);
        throw new BrokerStartError(`the local Kafka broker exited during start-up (code ${code})`);
      })
    : undefined;
  const startServices = async (): Promise<RunningStack> => {
    let registry: RunningSchemaRegistry | undefined;
    let schemaRegistry: string;
    let metricsRegistry: MetricsRegistry;
    let pipeline: Launched | undefined;
    let ops: OpsServer;
    let offline: OfflineStore | undefined;
    let sql: SqlServer | undefined;
    let sink: RunningSink | undefined;
    let demo: RunningDemo | undefined;
    let monitoring: RunningMonitoring | undefined;
    let tracing: Tracing | undefined;
    try {
      const layout = { prefix: config.topicPrefix, partitions: config.defaultPartitions };
      const admin = createKafka({ brokers, clientId: 'sluice-up', logger }).admin();
      await admin.connect();
      try {
        await ensureTopics(
          admin,
          [
            ...platformTopics(layout),
            ...topology.sources.flatMap((source) => sourceTopics(source.name, layout)),
            ...topology.views.flatMap((view) => featureTopics(view.name, layout)),
            ...topology.models.flatMap((model) => predictionTopics(model.name, layout)),
          ],
          logger,
        );
      } finally {
        await admin.disconnect();
      }
      if (config.schemaRegistry.externalUrl) {
        schemaRegistry = config.schemaRegistry.externalUrl;
      } else {
        const savedFile = path.join(dataDir, 'schema-registry.json');
        const saved = await readJsonFile<{ port: number }>(savedFile);
        const port = await choosePort(config.schemaRegistry.port, saved?.port, 'SLUICE_SCHEMA_REGISTRY_PORT');
        registry = await startSchemaRegistry({
          brokers,
          topic: `${config.topicPrefix}_schemas`,
          host: config.schemaRegistry.host,
          port,
          tokens: config.auth.registry,
          logger,
        });
        await writeJsonFile(savedFile, { port: Number(new URL(registry.url).port) });
        schemaRegistry = registry.url;
      }
      const schemaIds = await registerSchemas(schemaRegistry, topologySubjects(config.topicPrefix, topology), logger);
      metricsRegistry = createMetricsRegistry();
      tracing = tracingFromConfig(config, 'sluice');

      // The offline store: a ClickHouse server when CLICKHOUSE_URL says so, else embedded chDB.
      // chDB allows one data directory per process: this process owns it and serves SQL to the rest.
      if (config.clickhouse.url) {
        offline = new RemoteOfflineStore(config.clickhouse.url);
      } else {
        const engine = new ChdbEngine(path.join(dataDir, 'clickhouse'), { limits: config.sql.limits });
        offline = new EmbeddedOfflineStore(engine);
        const sqlFile = path.join(dataDir, 'sql.json');
        const savedSql = await readJsonFile<{ port: number }>(sqlFile);
        const sqlPort = await choosePort(config.sql.port, savedSql?.port, 'SLUICE_SQL_PORT');
        sql = await serveSql(engine, {
          host: config.sql.host,
          port: sqlPort,
          readonly: true,
          tokens: config.auth.sql,
          metrics: metricsRegistry,
          logger: logger.child({ service: 'sql' }),
        });
        await writeJsonFile(sqlFile, { port: Number(new URL(sql.url).port) });
      }
      const tables = [
        ...offlineTables({ sources: topology.sources, views: topology.views }),
        ...topology.models.flatMap((model) => [predictionsTable(model.name), shadowPredictionsTable(model.name)]),
      ];
      await ensureTables(offline, tables);

      // Every source's ingest → features → inference, fused: one task per partition, one transaction per commit.
      pipeline = await launch('pipeline', {
        config,
        topology,
        brokers,
        registryUrl: schemaRegistry,
        schemaIds,
        metrics: metricsRegistry,
        logger,
        ...(tracing ? { tracer: tracing.tracer } : {}),
      });
      sink = await runSink({
        brokers,
        groupId: `${config.topicPrefix}sluice-sink`,
        topicPrefix: config.topicPrefix,
        tables,
        store: offline,
        registryUrl: schemaRegistry,
        dlqTopic: `${config.topicPrefix}dlq`,
        metrics: metricsRegistry,
        logger,
      });
      // Monitoring (drift, performance, alerts, actions), each stage in its own consumer group beside the pipeline.
      monitoring = await launchMonitoring({
        config,
        topology,
        brokers,
        registryUrl: schemaRegistry,
        schemaIds,
        metrics: metricsRegistry,
        logger,
        lagGroups: [
          {
            group: `${config.topicPrefix}sluice-pipeline`,
            topics: topology.sources.map((source) => `${config.topicPrefix}raw.${source.name}`),
          },
        ],
      });
      const running = pipeline;
      const online = topology.views.length > 0 ? new OnlineStore(running.stage, topology.views, config.topicPrefix) : undefined;
      const kafka = createKafka({ brokers, clientId: 'sluice-models', logger });
      const artifacts = new ArtifactStore(path.join(dataDir, 'models'));
      ops = await serveOps(
        metricsRegistry,
        running.health,
        config.metrics.host,
        config.metrics.port,
        [
          onlineRoutes(() => online),
          tracing
            ? tracedRoute(
                tracing.tracer,
                '/predict/',
                predictRoutes(running.watchers, () => online, metricsRegistry),
              )
            : predictRoutes(running.watchers, () => online, metricsRegistry),
          dashboardRoutes({
            metrics: metricsRegistry,
            store: offline,
            topology,
            topicPrefix: config.topicPrefix,
            stages: () => [running.stage.status()],
            servingVersion: (model) => running.watchers.get(model)?.watcher.current()?.version.version,
            registeredVersions: (model) => running.watchers.get(model)?.watcher.registered() ?? [],
          }),
        ],
        { tokens: config.auth.ops },
      );

      if (stackOptions.demo) {
        const { demo: settings } = stackOptions;
        const versions = await publishFeatureViews(topology.views, {
          kafka,
          topic: `${config.topicPrefix}registry.features`,
          registryUrl: schemaRegistry,
          schemaId: schemaIds.get(`${config.topicPrefix}registry.features-value`) ?? 0,
          logger,
        });
        demo = startDemo({
          kafka,
          topicPrefix: config.topicPrefix,
          registryUrl: schemaRegistry,
          modelsSchemaId: schemaIds.get(`${config.topicPrefix}registry.models-value`) ?? 0,
          versions,
          artifactsDir: artifacts.dir,
          topology,
          positionFile: path.join(dataDir, 'demo.json'),
          store: offline,
          seed: settings.seed,
          historyEvents: settings.historyEvents,
          historySpanMs: settings.historySpanMs,
          rate: settings.rate,
          ...(settings.driftFrom !== undefined ? { driftFrom: settings.driftFrom } : {}),
          logger,
          onTrained: (report) => settings.onTrained?.(report),
        });
      }
    } catch (error) {
      // What the local broker last said, when start-up failed talking to it: the reason is often there.
      if (broker && kafkaLogDir) await reportBrokerLog(kafkaLogDir, logger);
      await demo?.stop();
      await monitoring?.stop();
      await sink?.stop();
      await pipeline?.stop();
      await sql?.close();
      await offline?.close();
      await registry?.stop();
      stoppingBroker = true;
      await broker?.stop();
      await tracing?.shutdown();
      throw error;
    }

    // Prometheus started from deploy/prometheus/prometheus.yml finds this process here.
    const scrapeTarget = await writeScrapeTarget(dataDir, 'up', scrapeAddress(ops.url, config.metrics.advertisedHost));

    const state: StackState = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      dataDir,
      topology: topology.file,
      endpoints: {
        kafka: brokers.join(','),
        schemaRegistry,
        metrics: `${ops.url}/metrics`,
        dashboard: `${ops.url}/`,
        features: `${ops.url}/features`,
        predict: `${ops.url}/predict`,
        clickhouse: sql?.url ?? redactUrl(config.clickhouse.url ?? ''),
      },
      kafkaMode: broker ? 'local' : 'external',
      ...(broker ? { kafkaPid: broker.pid } : {}),
    };
    await writeJsonFile(stackFile, state);
    await fs.chmod(stackFile, 0o600);

    let stopping = false;
    const brokerFailed = broker
      ? broker.exited.then((code) => new Error(`the local Kafka broker exited unexpectedly (code ${code})`))
      : new Promise<Error>(() => undefined);
    const running = pipeline;
    const runningSink = sink;
    const store = offline;
    const sqlServer = sql;
    const tracer = tracing;
    const sinkFailed = sink.done.then(
      () => new Promise<Error>(() => undefined),
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    const runningMonitoring = monitoring;
    let embeddedClosed: Promise<void> | undefined;
    const closeEmbedded = (): Promise<void> =>
      (embeddedClosed ??= (async () => {
        await sqlServer?.close();
        await store.close();
      })());
    const failed = Promise.race([brokerFailed, running.failed, sinkFailed, runningMonitoring.failed]);
    return {
      state,
      failed: failed.then((error) => {
        if (stopping) return new Promise<Error>(() => undefined);
        return error;
      }),
      closeEmbedded,
      async stop() {
        stopping = true;
        await fs.rm(stackFile, { force: true });
        await scrapeTarget.remove();
        await demo?.stop();
        await runningMonitoring.stop();
        await runningSink.stop();
        await running.stop();
        await ops.close();
        await closeEmbedded();
        await registry?.stop();
        await broker?.stop();
        await tracer?.shutdown();
      },
    };
  };
  if (!brokerDied) return startServices();
  // Settled either way once the services are up: a later exit is reported through `failed`.
  brokerDied.catch(() => undefined);
  return Promise.race([startServices(), brokerDied]);
}

/** Fails at once when SCHEMA_REGISTRY_URL does not answer like a Confluent registry. */
async function checkRegistry(url: string): Promise<void> {
  try {
    await new RegistryHttpClient(url).call('GET', '/subjects');
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.replace(/^schema registry at \S+ is unreachable: /, '') : String(cause);
    throw new SchemaRegistryError(50001, `cannot reach the schema registry at ${url} (SCHEMA_REGISTRY_URL): ${reason}`, {
      cause,
      retriable: true,
    });
  }
}

function redactUrl(url: string): string {
  if (url === '') return '';
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  return parsed.toString();
}

export { isAlive, readStackState, STACK_FILE, type StackEndpoints, type StackState } from './stack-file.js';

/** Logs the local broker's last warnings and errors (from its server.log), or that it wrote none. */
async function reportBrokerLog(logDir: string, logger: Logger): Promise<void> {
  const text = await fs.readFile(path.join(logDir, 'server.log'), 'utf8').catch(() => '');
  const lines = text.split('\n').filter((line) => / (WARN|ERROR|FATAL) |shut ?down|Shutting down/i.test(line));
  logger.error({ brokerLog: lines.slice(-15), logDir }, "start-up failed: the local broker's last warnings and errors");
}
