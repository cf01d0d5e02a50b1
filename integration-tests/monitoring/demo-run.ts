import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { expect, inject } from 'vitest';
import { launch, type Launched, type LaunchOptions } from '../../app/launch.js';
import { launchMonitoring } from '../../app/monitoring.js';
import { topologySubjects } from '../../app/stages.js';
import { loadConfig, type SluiceConfig } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry, type MetricsRegistry } from '../../common/metrics.js';
import { demoEvents, type DemoRecord } from '../../examples/fraud/generator.js';
import demo from '../../examples/fraud/sluice.config.js';
import { trainModel, type TrainReport } from '../../jobs/train.js';
import { ensureTopics, retryKafka } from '../../kafka/index.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, offlineTables, predictionsTable, type TableSpec } from '../../offline/index.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import type { RunningMonitoring } from '../../streams/monitoring/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { featureTopics, platformTopics, predictionTopics, sourceTopics } from '../../topology/topics.js';
import { groupLag, readToEnd, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { produceDemo } from '../rollouts/fixtures.js';
import { pendingRecords } from './pending.js';

/**
 * One run of the fraud demo with its monitoring, in simulated (event) time, from one seeded
 * generator stream: a week and 6 hours of history (the week warms up the 1-hour to 7-day features;
 * the champion is trained on the last 6 hours, its drift reference), then `monitoredHours` of
 * monitored traffic, drifting (larger amounts, new merchant categories) from hour `driftAtHour` of
 * them when given. Everything runs as `sluice up` composes it: the fused pipeline, monitoring with
 * its rules, the retrain action and the webhook, and the sink into ClickHouse.
 */
export const HOUR = 3_600_000;
const T0 = Math.floor(Date.UTC(2024, 4, 1) / HOUR) * HOUR;
// A week of history first: the demo's 7-day features (amount max, mean, deviation per card) only
// stop growing once a week of transactions is in their window.
const TRAIN_FROM = T0 + 7 * 24 * HOUR;
/** Event time of monitored hour 0: the champion is in service from here. */
export const MONITOR_FROM = TRAIN_FROM + 6 * HOUR;
export const model = demo.models.find((candidate) => candidate.name === 'fraud')!;
const logger = silentLogger();

export interface Timeline {
  readonly monitoredHours: number;
  /** Monitored hour from which the generator drifts; none: no drift. */
  readonly driftAtHour?: number;
}

const timeOf = (record: DemoRecord): number => record.value.timestamp as number;

export class DemoRun {
  readonly prefix = `${uniqueName('mondemo')}.`;
  readonly kafka: Kafka = testKafka();
  readonly admin: Admin = this.kafka.admin();
  readonly posted: Record<string, unknown>[] = [];
  readonly brokers = inject('brokers');
  registry!: RunningSchemaRegistry;
  dataDir!: string;
  config!: SluiceConfig;
  metrics!: MetricsRegistry;
  store!: EmbeddedOfflineStore;
  tables!: TableSpec[];
  schemaIds!: Map<string, number>;
  pipeline: Launched | undefined;
  sink: RunningSink | undefined;
  monitoring: RunningMonitoring | undefined;
  private webhook!: http.Server;

  constructor(readonly timeline: Timeline) {}

  get driftFrom(): number | undefined {
    return this.timeline.driftAtHour === undefined ? undefined : MONITOR_FROM + this.timeline.driftAtHour * HOUR;
  }

  get end(): number {
    return MONITOR_FROM + this.timeline.monitoredHours * HOUR;
  }

  /** Topics, the schema registry, the webhook receiver and the ClickHouse tables. */
  async setUp(): Promise<void> {
    await this.admin.connect();
    this.dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-mondemo-'));
    this.webhook = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        this.posted.push(JSON.parse(body) as Record<string, unknown>);
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.webhook.listen(0, '127.0.0.1', resolve));
    const layout = { prefix: this.prefix, partitions: 3 };
    await retryKafka(() =>
      ensureTopics(
        this.admin,
        [
          ...platformTopics(layout),
          ...demo.sources.flatMap((source) => sourceTopics(source.name, layout)),
          ...demo.views.flatMap((view) => featureTopics(view.name, layout)),
          ...demo.models.flatMap((definition) => predictionTopics(definition.name, layout)),
        ],
        logger,
      ),
    );
    this.registry = await startSchemaRegistry({
      brokers: this.brokers,
      topic: `${this.prefix}_schemas`,
      host: '127.0.0.1',
      port: 0,
      logger,
    });
    this.config = loadConfig({
      SLUICE_DATA_DIR: this.dataDir,
      SLUICE_TOPIC_PREFIX: this.prefix,
      KAFKA_BROKERS: this.brokers.join(','),
      SCHEMA_REGISTRY_URL: this.registry.url,
      SLUICE_ALERT_WEBHOOK_URL: `http://127.0.0.1:${(this.webhook.address() as AddressInfo).port}/alerts`,
    });
    this.metrics = createMetricsRegistry(false);
    this.store = new EmbeddedOfflineStore(new ChdbEngine(path.join(this.dataDir, 'clickhouse')));
    this.tables = [...offlineTables({ sources: demo.sources, views: demo.views }), predictionsTable('fraud')];
    await ensureTables(this.store, this.tables);
  }

  async tearDown(): Promise<void> {
    await this.monitoring?.stop();
    await this.pipeline?.stop();
    await this.sink?.stop();
    await this.store.close();
    await this.registry.stop();
    await this.admin.disconnect();
    await new Promise((resolve) => this.webhook.close(resolve));
    await fs.rm(this.dataDir, { recursive: true, force: true });
  }

  get launchOptions(): LaunchOptions {
    return {
      config: this.config,
      topology: demo,
      brokers: this.brokers,
      registryUrl: this.registry.url,
      schemaIds: this.schemaIds,
      metrics: this.metrics,
      logger,
    };
  }

  /**
   * The whole timeline: the pipeline and the sink, the history, the champion trained on its last 6
   * hours, monitoring, the monitored hours; returns once the pipeline scored everything and every
   * monitoring stage committed everything it reads.
   */
  async run(): Promise<{ champion: TrainReport; transactions: number }> {
    this.schemaIds = await registerSchemas(this.registry.url, topologySubjects(this.prefix, demo), logger);
    const versions = await publishFeatureViews(demo.views, {
      kafka: this.kafka,
      topic: `${this.prefix}registry.features`,
      registryUrl: this.registry.url,
      schemaId: this.schemaIds.get(`${this.prefix}registry.features-value`)!,
      logger,
    });
    this.pipeline = await launch('pipeline', this.launchOptions);
    this.sink = await runSink({
      brokers: this.brokers,
      groupId: `${this.prefix}sluice-sink`,
      topicPrefix: this.prefix,
      tables: this.tables,
      store: this.store,
      registryUrl: this.registry.url,
      dlqTopic: `${this.prefix}dlq`,
      metrics: this.metrics,
      logger,
    });

    // ---- history, and the champion trained on its last 6 hours (the drift reference) -----------
    const events = [
      ...demoEvents({
        seed: 7,
        events: Math.round(((this.end - T0) / HOUR) * 400),
        end: this.end,
        spanMs: this.end - T0,
        cards: 400,
        users: 200,
        fraudRate: 0.01,
        chargebackDelayMs: 20 * 60_000,
        ...(this.driftFrom === undefined ? {} : { driftFrom: this.driftFrom }),
      }),
    ];
    const history = events.filter((record) => timeOf(record) < MONITOR_FROM);
    await this.produce(history);
    const historyTransactions = history.filter((record) => record.topic === 'raw.transactions').length;
    await waitUntil(
      async () => (await this.count('features_card_amount_7d')) === historyTransactions,
      400_000,
      'the history ingested and featurized',
    );
    const champion = await trainModel({
      kafka: this.kafka,
      topicPrefix: this.prefix,
      registryUrl: this.registry.url,
      modelsSchemaId: this.schemaIds.get(`${this.prefix}registry.models-value`)!,
      versions,
      artifactsDir: path.join(this.dataDir, 'models'),
      model,
      range: { eventTime: { from: TRAIN_FROM, to: MONITOR_FROM } },
      aliases: ['champion'],
      logger,
    });
    expect(champion.version.version).toBe(1);
    await waitUntil(
      () => this.pipeline?.watchers.get('fraud')?.watcher.current()?.version.version === 1,
      60_000,
      'the champion in service',
    );
    this.monitoring = await launchMonitoring({ ...this.launchOptions, parts: ['drift', 'performance', 'alerts', 'webhook', 'actions'] });

    // ---- the monitored hours ----------------------------------------------------------------------
    const monitored = events.filter((record) => timeOf(record) >= MONITOR_FROM);
    await this.produce(monitored);
    const transactions = historyTransactions + monitored.filter((record) => record.topic === 'raw.transactions').length;
    await waitUntil(
      async () => (await groupLag(this.admin, `${this.prefix}sluice-pipeline`, `${this.prefix}raw.transactions`)) === 0,
      600_000,
      'the pipeline to score everything',
    );
    await waitUntil(
      async () =>
        (await new Promise((resolve) => setTimeout(resolve, 2_000))) === undefined &&
        (await this.lag('monitoring-drift', 'predictions.fraud')) === 0 &&
        (await this.lag('monitoring-drift', 'sluice-monitoring-drift-partials')) === 0 &&
        (await this.lag('monitoring-alerts', 'monitoring.drift')) === 0 &&
        (await this.lag('monitoring-alert-actions', 'monitoring.alerts')) === 0 &&
        (await this.lag('monitoring-performance', 'predictions.fraud')) === 0 &&
        (await this.lag('monitoring-performance', 'events.chargebacks')) === 0 &&
        (await this.lag('monitoring-performance', 'sluice-monitoring-performance-outcomes')) === 0 &&
        (await this.lag('monitoring-performance', 'sluice-monitoring-performance-partials')) === 0,
      600_000,
      'monitoring to catch up',
    );
    return { champion, transactions };
  }

  async produce(records: readonly DemoRecord[]): Promise<void> {
    await produceDemo(this.kafka, this.prefix, records);
  }

  async count(table: string, where = '1'): Promise<number> {
    return Number((await this.store.query<{ n: string }>(`SELECT count() AS n FROM ${table} WHERE ${where}`))[0]?.n);
  }

  /** A topic's records, Avro-decoded, read (read_committed) to its end offsets. */
  async decodeAll<T>(topic: string): Promise<T[]> {
    const serde = new AvroSerde(this.registry.url);
    return Promise.all(
      (await readToEnd(this.kafka, `${this.prefix}${topic}`)).map(async (message) => (await serde.decode(message.value!)) as T),
    );
  }

  lag(group: string, topic: string): Promise<number> {
    return pendingRecords(this.admin, this.kafka, `${this.prefix}sluice-${group}`, `${this.prefix}${topic}`);
  }
}
