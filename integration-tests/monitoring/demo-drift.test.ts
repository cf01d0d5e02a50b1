import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launch, type Launched } from '../../app/launch.js';
import { backfillMonitoring, monitoringReplayOptions } from '../../cli/commands/monitoring.js';
import { checkMonitoring } from '../../jobs/monitoring.js';
import { launchMonitoring } from '../../app/monitoring.js';
import { topologySubjects } from '../../app/stages.js';
import { loadConfig, type SluiceConfig } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry, type MetricsRegistry } from '../../common/metrics.js';
import { demoEvents, type DemoRecord } from '../../examples/fraud/generator.js';
import demo from '../../examples/fraud/sluice.config.js';
import { trainModel } from '../../jobs/train.js';
import { ensureTopics, retryKafka } from '../../kafka/index.js';
import { readModelRegistry } from '../../models/registry.js';
import type { AlertRecord, DriftRecord } from '../../monitoring/index.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, offlineTables, predictionsTable, type TableSpec } from '../../offline/index.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import type { RunningMonitoring } from '../../streams/monitoring/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { featureTopics, platformTopics, predictionTopics, sourceTopics } from '../../topology/topics.js';
import { groupLag, readToEnd, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { pendingRecords } from './pending.js';

/**
 * The fraud demo end to end with its monitoring, in simulated (event) time, one generator stream:
 * a week and 6 hours of history (the week warms up the 1-hour to 7-day features; the champion is
 * trained on the last 6 hours), then 30 monitored hours without drift, then the generator's drift (larger amounts, new
 * merchant categories) for 6 hours. Everything runs as `sluice up` composes it: the fused pipeline,
 * monitoring with its rules, the retrain action and the webhook, and the sink into ClickHouse.
 */
const HOUR = 3_600_000;
const T0 = Math.floor(Date.UTC(2024, 4, 1) / HOUR) * HOUR;
// A week of history first: the demo's 7-day features (amount max, mean, deviation per card) only
// stop growing once a week of transactions is in their window.
const TRAIN_FROM = T0 + 7 * 24 * HOUR;
const MONITOR_FROM = TRAIN_FROM + 6 * HOUR;
const DRIFT_FROM = MONITOR_FROM + 30 * HOUR;
const END = DRIFT_FROM + 6 * HOUR;
const DRIFT_RULES = new Set(['input_drift', 'dataset_drift']);
const model = demo.models.find((candidate) => candidate.name === 'fraud')!;
const logger = silentLogger();

/** One seeded stream of demo events over [T0, END), drifting from DRIFT_FROM, at a steady rate. */
const stream = (): DemoRecord[] => [
  ...demoEvents({
    seed: 7,
    events: Math.round(((END - T0) / HOUR) * 400),
    end: END,
    spanMs: END - T0,
    cards: 400,
    users: 200,
    fraudRate: 0.01,
    chargebackDelayMs: 20 * 60_000,
    driftFrom: DRIFT_FROM,
  }),
];
const timeOf = (record: DemoRecord): number => record.value.timestamp as number;

describe('the demo with monitoring: no drift alert without drift; drift → one alert per rule, a retrained candidate, all in ClickHouse', () => {
  const prefix = `${uniqueName('mondemo')}.`;
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let dataDir: string;
  let config: SluiceConfig;
  let metrics: MetricsRegistry;
  let store: EmbeddedOfflineStore;
  let tables: TableSpec[];
  let pipeline: Launched | undefined;
  let sink: RunningSink | undefined;
  let monitoring: RunningMonitoring | undefined;
  let webhook: http.Server;
  const posted: Record<string, unknown>[] = [];

  const produce = async (records: readonly DemoRecord[]): Promise<void> => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let start = 0; start < records.length; start += 5_000) {
      const slice = records.slice(start, start + 5_000);
      const topics = [...new Set(slice.map((record) => record.topic))];
      await producer.sendBatch({
        acks: -1,
        topicMessages: topics.map((topic) => ({
          topic: `${prefix}${topic}`,
          messages: slice
            .filter((record) => record.topic === topic)
            .map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
        })),
      });
    }
    await producer.disconnect();
  };
  const count = async (table: string, where = '1'): Promise<number> =>
    Number((await store.query<{ n: string }>(`SELECT count() AS n FROM ${table} WHERE ${where}`))[0]?.n);
  const decodeAll = async <T>(topic: string): Promise<T[]> => {
    const serde = new AvroSerde(registry.url);
    return Promise.all((await readToEnd(kafka, `${prefix}${topic}`)).map(async (message) => (await serde.decode(message.value!)) as T));
  };
  const lag = async (group: string, topic: string): Promise<number> =>
    pendingRecords(admin, kafka, `${prefix}sluice-${group}`, `${prefix}${topic}`);

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-mondemo-'));
    webhook = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        posted.push(JSON.parse(body) as Record<string, unknown>);
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
    const layout = { prefix, partitions: 3 };
    await retryKafka(() =>
      ensureTopics(
        admin,
        [
          ...platformTopics(layout),
          ...demo.sources.flatMap((source) => sourceTopics(source.name, layout)),
          ...demo.views.flatMap((view) => featureTopics(view.name, layout)),
          ...demo.models.flatMap((definition) => predictionTopics(definition.name, layout)),
        ],
        logger,
      ),
    );
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    config = loadConfig({
      SLUICE_DATA_DIR: dataDir,
      SLUICE_TOPIC_PREFIX: prefix,
      KAFKA_BROKERS: inject('brokers').join(','),
      SCHEMA_REGISTRY_URL: registry.url,
      SLUICE_ALERT_WEBHOOK_URL: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/alerts`,
    });
    metrics = createMetricsRegistry(false);
    store = new EmbeddedOfflineStore(new ChdbEngine(path.join(dataDir, 'clickhouse')));
    tables = [...offlineTables({ sources: demo.sources, views: demo.views }), predictionsTable('fraud')];
    await ensureTables(store, tables);
  });

  afterAll(async () => {
    await monitoring?.stop();
    await pipeline?.stop();
    await sink?.stop();
    await store.close();
    await registry.stop();
    await admin.disconnect();
    await new Promise((resolve) => webhook.close(resolve));
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('30 monitored hours without drift raise no drift alert; drift from hour 30 is found in its first window, alerted once per rule, retrained as a candidate, and in ClickHouse', async () => {
    const brokers = inject('brokers');
    const schemaIds = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
    const versions = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: schemaIds.get(`${prefix}registry.features-value`)!,
      logger,
    });
    const launchOptions = { config, topology: demo, brokers, registryUrl: registry.url, schemaIds, metrics, logger };
    pipeline = await launch('pipeline', launchOptions);
    sink = await runSink({
      brokers,
      groupId: `${prefix}sluice-sink`,
      topicPrefix: prefix,
      tables,
      store,
      registryUrl: registry.url,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
    });

    // ---- history, and the champion trained on its last 6 hours (the drift reference) -----------
    const events = stream();
    const history = events.filter((record) => timeOf(record) < MONITOR_FROM);
    await produce(history);
    const historyTransactions = history.filter((record) => record.topic === 'raw.transactions').length;
    await waitUntil(
      async () => (await count('features_card_amount_7d')) === historyTransactions,
      400_000,
      'the history ingested and featurized',
    );
    const champion = await trainModel({
      kafka,
      topicPrefix: prefix,
      registryUrl: registry.url,
      modelsSchemaId: schemaIds.get(`${prefix}registry.models-value`)!,
      versions,
      artifactsDir: path.join(dataDir, 'models'),
      model,
      range: { eventTime: { from: TRAIN_FROM, to: MONITOR_FROM } },
      aliases: ['champion'],
      logger,
    });
    expect(champion.version.version).toBe(1);
    await waitUntil(() => pipeline?.watchers.get('fraud')?.watcher.current()?.version.version === 1, 60_000, 'the champion in service');
    monitoring = await launchMonitoring({ ...launchOptions, parts: ['drift', 'performance', 'alerts', 'webhook', 'actions'] });

    // ---- 30 hours without drift, then drift ------------------------------------------------------
    const monitored = events.filter((record) => timeOf(record) >= MONITOR_FROM);
    await produce(monitored);
    const transactions = historyTransactions + monitored.filter((record) => record.topic === 'raw.transactions').length;
    await waitUntil(
      async () => (await groupLag(admin, `${prefix}sluice-pipeline`, `${prefix}raw.transactions`)) === 0,
      600_000,
      'the pipeline to score everything',
    );
    await waitUntil(
      async () =>
        (await new Promise((resolve) => setTimeout(resolve, 2_000))) === undefined &&
        (await lag('monitoring-drift', 'predictions.fraud')) === 0 &&
        (await lag('monitoring-drift', 'sluice-monitoring-drift-partials')) === 0 &&
        (await lag('monitoring-alerts', 'monitoring.drift')) === 0 &&
        (await lag('monitoring-alert-actions', 'monitoring.alerts')) === 0 &&
        (await lag('monitoring-performance', 'predictions.fraud')) === 0 &&
        (await lag('monitoring-performance', 'events.chargebacks')) === 0 &&
        (await lag('monitoring-performance', 'sluice-monitoring-performance-outcomes')) === 0 &&
        (await lag('monitoring-performance', 'sluice-monitoring-performance-partials')) === 0,
      600_000,
      'monitoring to catch up',
    );
    await waitUntil(async () => (await decodeAll<{ status: string }>('monitoring.actions')).length > 0, 300_000, 'the retrain action');

    // ---- drift records: quiet before the drift, the first drifted hour found --------------------
    const drift = await decodeAll<DriftRecord>('monitoring.drift');
    const hourly = (start: number, feature: string): DriftRecord | undefined =>
      drift.find(
        (record) =>
          record.window_kind === 'TUMBLING' && record.model_version === 1 && record.window_start === start && record.feature === feature,
      );
    const first = (feature: string): string | undefined => hourly(DRIFT_FROM, feature)?.verdict;
    const before = drift.filter(
      (record) => record.window_kind === 'TUMBLING' && record.model_version === 1 && record.window_end <= DRIFT_FROM,
    );
    const quietHours = new Set(before.map((record) => record.window_start)).size;
    console.log(
      `${transactions} transactions scored; ${drift.length} drift records (${quietHours} hourly windows before the drift); first drifted hour: amount ${first('amount')} (PSI ${hourly(DRIFT_FROM, 'amount')?.psi}), merchant_category ${first('merchant_category')} (PSI ${hourly(DRIFT_FROM, 'merchant_category')?.psi}); dataset drift share before: max ${Math.max(...before.filter((record) => record.feature === '__dataset__').map((record) => record.drift_share ?? 0))}`,
    );
    const psiOf = (record: DriftRecord | undefined): string => (record?.psi ?? Number.NaN).toFixed(3);
    const lastN = drift.filter((record) => record.window_kind === 'LAST_N' && record.model_version === 1);
    console.log(
      ['card_txn_1h.txn_count', 'card_txn_24h.txn_count', 'amount']
        .map(
          (feature) =>
            `${feature}: hourly PSI ${[0, 1, 2].map((hour) => psiOf(hourly(MONITOR_FROM + hour * HOUR, feature))).join(' ')}; last-N PSI ${lastN
              .filter((record) => record.feature === feature)
              .slice(0, 4)
              .map((record) => `${psiOf(record)} (+${((record.window_end - MONITOR_FROM) / HOUR).toFixed(2)} h, n ${record.sample_size})`)
              .join(' ')}`,
        )
        .join('\n'),
    );
    expect(quietHours).toBeGreaterThanOrEqual(29);
    expect(first('amount')).toBe('DRIFT');
    expect(first('merchant_category')).toBe('DRIFT');

    // ---- alerts: none about drift before it; each drift rule fires once after it, stays open ----
    const alerts = await decodeAll<AlertRecord>('monitoring.alerts');
    console.log(
      alerts
        .map((alert) => `${alert.state} ${alert.rule} ${alert.subject} at +${(alert.at - MONITOR_FROM) / HOUR} h: ${alert.message}`)
        .join('\n'),
    );
    const driftAlerts = alerts.filter((alert) => DRIFT_RULES.has(alert.rule));
    expect(driftAlerts.filter((alert) => alert.at <= DRIFT_FROM)).toEqual([]);
    const inputDrift = driftAlerts.filter((alert) => alert.rule === 'input_drift');
    expect(inputDrift.map((alert) => [alert.state, alert.at, alert.action])).toEqual([['FIRING', DRIFT_FROM + HOUR, 'retrain']]);
    expect(inputDrift[0]?.feature?.split(',')).toEqual(expect.arrayContaining(['amount', 'merchant_category']));
    // The webhook got each firing (retried until delivered; duplicates are possible, losses not).
    await waitUntil(
      () => driftAlerts.every((alert) => posted.some((body) => body.alert_id === alert.alert_id && body.state === alert.state)),
      60_000,
      'the webhook to receive every drift alert',
    );

    // ---- retraining: a candidate linked to the alert, champion unchanged -------------------------
    const actions = await decodeAll<{
      alert_id: string;
      status: string;
      model_version: number | null;
      aliases: string[];
      run_id: string | null;
    }>('monitoring.actions');
    expect(actions.map((action) => [action.alert_id, action.status, action.aliases])).toEqual([
      [inputDrift[0]?.alert_id, 'SUCCEEDED', ['candidate']],
    ]);
    const registered = await readModelRegistry({ kafka, topic: `${prefix}registry.models`, registryUrl: registry.url });
    const candidate = registered.find((version) => version.version === actions[0]?.model_version);
    expect(candidate?.aliases).toEqual(['candidate']);
    expect(candidate?.params.trigger_alert).toBe(inputDrift[0]?.alert_id);
    expect(candidate?.run_id).toBe(actions[0]?.run_id);
    expect(registered.find((version) => version.aliases.includes('champion'))?.version).toBe(1);

    // ---- everything in ClickHouse: each topic to its end offsets, one row per natural key ----------
    // (the sink keeps one row per key: a record with the key of an earlier one is the same fact; for
    // drift that holds only if such records agree in everything but the last-N round, checked here)
    const topics = ['monitoring.drift', 'monitoring.performance', 'monitoring.alerts', 'monitoring.actions', 'registry.models'];
    const expected: Record<string, number> = {};
    for (const topic of topics) {
      const spec = tables.find((table) => table.topic === topic)!;
      const byKey = new Map<string, Record<string, unknown>[]>();
      for (const record of await decodeAll<Record<string, unknown>>(topic)) {
        const key = spec.key.map((column) => JSON.stringify(record[column] ?? null)).join('|');
        byKey.set(key, [...(byKey.get(key) ?? []), record]);
      }
      expected[topic] = byKey.size;
      if (topic === 'monitoring.drift')
        for (const records of byKey.values()) {
          const [first, ...others] = records.map((record) => JSON.stringify({ ...record, last_n_round: null }));
          for (const other of others) expect(other).toBe(first);
        }
    }
    expect(expected['monitoring.performance']).toBeGreaterThan(0);
    const counts = async (): Promise<Record<string, number>> =>
      Object.fromEntries(await Promise.all(topics.map(async (topic) => [topic, await count(topic.replaceAll('.', '_'))] as const)));
    const deadline = Date.now() + 120_000;
    let stored = await counts();
    while (JSON.stringify(stored) !== JSON.stringify(expected) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      stored = await counts();
    }
    expect(stored).toEqual(expected);
    expect(await count('monitoring_alerts', `rule = 'input_drift' AND state = 'FIRING'`)).toBe(1);
    expect(await count('monitoring_actions', `status = 'SUCCEEDED' AND model_version = ${actions[0]?.model_version}`)).toBe(1);

    // ---- replay: a backfill recomputes every record the stages wrote (none new), bit for bit --------
    const context = { config, logger };
    const cluster = { brokers, registryUrl: registry.url, stack: undefined };
    const backfill = await backfillMonitoring(context, cluster, demo, store, {});
    expect(backfill?.drift).toBe(drift.length);
    expect(backfill).toMatchObject({ newDrift: 0, newPerformance: 0 });
    const reports = await checkMonitoring(await monitoringReplayOptions(context, cluster, demo, kafka, {}));
    console.log(JSON.stringify(reports.map(({ examples, ...report }) => ({ ...report, example: examples[0] }))));
    for (const report of reports) {
      expect(report.compared).toBeGreaterThan(0);
      expect(report.mismatchRate).toBe(0);
    }
  }, 1_800_000);
});
