import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { demoEvents } from '../../examples/fraud/generator.js';
import { trainModel, type TrainReport } from '../../jobs/train.js';
import { ModelWatcher } from '../../models/deployment.js';
import { ArtifactStore, readModelRegistry, setAlias } from '../../models/registry.js';
import { createMetricsRegistry, type MetricsRegistry } from '../../common/metrics.js';
import { ChdbEngine, EmbeddedOfflineStore, ensureTables, offlineTables, predictionsTable, type TableSpec } from '../../offline/index.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { featuresStage } from '../../streams/features/stage.js';
import { ingestStage } from '../../streams/ingest/stage.js';
import { runPipeline, runStage, type RunningStage, type StageOptions } from '../../streams/runtime/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import { createTopic, removeTempDirs, tempDir, testKafka, uniqueName, waitUntil } from '../helpers.js';
import type { ConsumedMessage } from '../streams/helpers.js';
import { defineStages, pipelineFor, topologySubjects } from '../../app/stages.js';
import demo from '../../examples/fraud/sluice.config.js';

const HOUR = 3_600_000;
const logger = silentLogger();
const model = demo.models.find((candidate) => candidate.name === 'fraud')!;

interface DecodedPrediction {
  readonly event_id: string;
  readonly model_version: number;
  readonly deployment: string;
  readonly score: number;
  readonly fallback_reason: string | null;
  readonly partition: number;
  readonly offset: number;
}

describe('models end to end: generator → ingest → features → sink → train → registry → inference', () => {
  const prefix = `${uniqueName('e2e')}.`;
  const end = Date.now() - 2 * HOUR;
  const history = [
    ...demoEvents({
      seed: 21,
      events: 30_000,
      end,
      spanMs: 2 * 24 * HOUR,
      cards: 300,
      users: 200,
      fraudRate: 0.008,
      chargebackDelayMs: 30 * 60_000,
    }),
  ];
  const live = [...demoEvents({ seed: 22, events: 4_000, end: Date.now(), spanMs: HOUR, cards: 300, users: 200, fraudRate: 0.008 })].filter(
    (record) => record.topic === 'raw.transactions',
  );
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let ids: Map<string, number>;
  let versions: Map<string, number>;
  let store: EmbeddedOfflineStore;
  let tables: TableSpec[];
  let metrics: MetricsRegistry;
  let artifacts: ArtifactStore;
  let watcher: ModelWatcher;
  let features: RunningStage;
  let first: TrainReport;
  let stageOptions: (group: string) => StageOptions;
  const running: { stop(): Promise<void> }[] = [];

  const produce = async (records: readonly { topic: string; key: string; value: Record<string, unknown> }[]): Promise<void> => {
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
  const count = async (table: string): Promise<number> =>
    Number((await store.query<{ n: string }>(`SELECT count() AS n FROM ${table}`))[0]?.n);
  const registryOptions = () => ({
    kafka,
    topic: `${prefix}registry.models`,
    registryUrl: registry.url,
    schemaId: ids.get(`${prefix}registry.models-value`)!,
  });
  const decodePredictions = async (messages: ConsumedMessage[], raw: Map<string, Buffer>): Promise<DecodedPrediction[]> => {
    const serde = new AvroSerde(registry.url);
    return Promise.all(
      messages.map(async (message) => ({
        ...((await serde.decode(raw.get(`${message.partition}:${message.offset}`)!)) as Omit<DecodedPrediction, 'partition' | 'offset'>),
        partition: message.partition,
        offset: Number(message.offset),
      })),
    );
  };
  /** Reads predictions.fraud with read_committed (raw bytes kept for Avro decoding). */
  const readPredictions = async (until: number): Promise<DecodedPrediction[]> => {
    const raw = new Map<string, Buffer>();
    const consumer = kafka.consumer({ groupId: uniqueName('reader'), readUncommitted: false, maxWaitTimeInMs: 200 });
    const messages: ConsumedMessage[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: `${prefix}predictions.fraud`, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        raw.set(`${partition}:${message.offset}`, message.value ?? Buffer.alloc(0));
        messages.push({ key: message.key?.toString() ?? '', value: '', headers: {}, partition, offset: message.offset });
        await Promise.resolve();
      },
    });
    try {
      await waitUntil(() => messages.length >= until, 180_000, `${until} predictions`);
      await new Promise((resolve) => setTimeout(resolve, 1_500)); // duplicates would show up now
    } finally {
      await consumer.disconnect();
    }
    return decodePredictions(messages, raw);
  };

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    tables = [...offlineTables({ sources: demo.sources, views: demo.views }), predictionsTable('fraud')];
    for (const topic of ['raw.transactions', 'raw.clicks', 'raw.chargebacks', ...tables.map((table) => table.topic)]) {
      await (topic.startsWith('registry.')
        ? createTopic(admin, `${prefix}${topic}`, 1, { 'cleanup.policy': 'compact' })
        : createTopic(admin, `${prefix}${topic}`, 3));
    }
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
    versions = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`)!,
      logger,
    });
    store = new EmbeddedOfflineStore(new ChdbEngine(await tempDir('sluice-e2e-chdb-')));
    await ensureTables(store, tables);
    artifacts = new ArtifactStore(await tempDir('sluice-e2e-models-'));
    metrics = createMetricsRegistry(false);
    const stateDir = await tempDir('sluice-e2e-state-');
    stageOptions = (group) => ({
      brokers: inject('brokers'),
      groupId: `${prefix}${group}`,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
      stateDir,
      topicPrefix: prefix,
    });
  });

  afterAll(async () => {
    for (const service of running.reverse()) await service.stop();
    await watcher.stop();
    await store.close();
    await registry.stop();
    await admin.disconnect();
    await removeTempDirs();
  });

  it('trains a model from replayed topics with AUC above 0.8 on the held-out time slice', async () => {
    await produce(history);
    running.push(
      await runStage(
        ingestStage({
          sources: demo.sources,
          topicPrefix: prefix,
          serdeFor: (reader) => new AvroSerde(registry.url, reader),
          schemaIds: {
            events: Object.fromEntries(demo.sources.map((source) => [source.name, ids.get(`${prefix}events.${source.name}-value`)!])),
            quality: ids.get(`${prefix}monitoring.quality-value`)!,
          },
          metrics,
        }),
        stageOptions('ingest'),
      ),
    );
    features = await runStage(
      featuresStage({
        views: demo.views,
        versions,
        topicPrefix: prefix,
        serdeFor: (reader) => new AvroSerde(registry.url, reader),
        schemaIds: Object.fromEntries(demo.views.map((view) => [view.name, ids.get(`${prefix}features.${view.name}-value`)!])),
        metrics,
      }),
      stageOptions('features'),
    );
    running.push(features);
    const sink: RunningSink = await runSink({
      brokers: inject('brokers'),
      groupId: `${prefix}sink`,
      topicPrefix: prefix,
      tables,
      store,
      registryUrl: registry.url,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
    });
    running.push(sink);
    const transactions = history.filter((record) => record.topic === 'raw.transactions').length;
    const chargebacks = history.filter((record) => record.topic === 'raw.chargebacks').length;
    await waitUntil(
      async () =>
        (await count('events_transactions')) === transactions &&
        (await count('events_chargebacks')) === chargebacks &&
        (await count('features_card_amount_7d')) === transactions,
      180_000,
      'history ingested and featurized',
    );

    first = await trainModel({
      kafka,
      topicPrefix: prefix,
      registryUrl: registry.url,
      modelsSchemaId: ids.get(`${prefix}registry.models-value`)!,
      versions,
      artifactsDir: artifacts.dir,
      model,
      aliases: ['champion'],
      logger,
    });
    process.stdout.write(
      `trained fraud v${first.version.version}: AUC ${first.evaluation.auc.toFixed(4)} on ${first.testRows} held-out rows (${first.evaluation.positives} positives), train AUC ${first.trainAuc.toFixed(4)}, ONNX parity ${first.parityMaxDiff.toExponential(2)}, ${first.backend}\n`,
    );
    expect(first.evaluation.auc).toBeGreaterThan(0.8);
    expect(first.parityMaxDiff).toBeLessThan(1e-5);
    expect(first.version).toMatchObject({ name: 'fraud', version: 1, aliases: ['champion'] });
    expect(first.version.dataset.ranges.some((range) => range.topic === `${prefix}events.chargebacks` && range.end_offset > 0)).toBe(true);
    expect(first.version.dataset.feature_versions).toEqual({ card_txn_1h: 1, card_txn_24h: 1, card_amount_7d: 1 });
    const registered = await readModelRegistry(registryOptions());
    expect(registered.map((version) => [version.version, version.aliases])).toEqual([[1, ['champion']]]);
    await waitUntil(async () => (await count('registry_models')) === 1, 30_000, 'the registry in ClickHouse');
  });

  it('predicts every event exactly once from the registered version, hot-reloads a promoted version monotonically, and lands in ClickHouse', async () => {
    watcher = new ModelWatcher({
      kafka,
      topic: `${prefix}registry.models`,
      registryUrl: registry.url,
      model: 'fraud',
      artifacts,
      logger,
      maxWaitMs: 0,
    });
    await watcher.start();
    await waitUntil(() => watcher.current()?.version.version === 1, 30_000, 'version 1 in service');
    // Inference as its own process would run it: events.transactions → the features of each event
    // (computed in the same task, not read from another stage) → the champion.
    const stages = await defineStages({
      topology: demo,
      topicPrefix: prefix,
      brokers: inject('brokers'),
      registryUrl: registry.url,
      schemaIds: ids,
      metrics,
      logger,
      watchers: new Map([['fraud', watcher]]),
    });
    running.push(await runPipeline(pipelineFor('inference-fraud', demo, stages, prefix)!, stageOptions('inference-fraud')));
    const historical = history.filter((record) => record.topic === 'raw.transactions').length;
    const before = await readPredictions(historical);
    expect(before).toHaveLength(historical);
    expect(new Set(before.map((prediction) => prediction.event_id)).size).toBe(historical);
    expect(
      before.every(
        (prediction) => prediction.model_version === 1 && prediction.deployment === 'CHAMPION' && prediction.fallback_reason === null,
      ),
    ).toBe(true);

    // ---- hot reload: version 2 is promoted while live events stream in --------------------
    const second = await trainModel({
      kafka,
      topicPrefix: prefix,
      registryUrl: registry.url,
      modelsSchemaId: ids.get(`${prefix}registry.models-value`)!,
      versions,
      artifactsDir: artifacts.dir,
      model,
      seed: 7,
      logger,
    });
    expect(second.version.version).toBe(2);
    const half = Math.floor(live.length / 2);
    for (let start = 0; start < live.length; start += 250) {
      await produce(live.slice(start, start + 250));
      if (start <= half && start + 250 > half) await setAlias(registryOptions(), 'fraud', 2, 'champion');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const all = await readPredictions(historical + live.length);
    expect(all).toHaveLength(historical + live.length);
    expect(new Set(all.map((prediction) => prediction.event_id)).size).toBe(historical + live.length);
    const byPartition = new Map<number, DecodedPrediction[]>();
    for (const prediction of all) byPartition.set(prediction.partition, [...(byPartition.get(prediction.partition) ?? []), prediction]);
    for (const predictions of byPartition.values()) {
      const sequence = predictions.sort((left, right) => left.offset - right.offset).map((prediction) => prediction.model_version);
      for (let index = 1; index < sequence.length; index++) expect(sequence[index]).toBeGreaterThanOrEqual(sequence[index - 1]!);
    }
    const counts = new Map<number, number>();
    for (const prediction of all) counts.set(prediction.model_version, (counts.get(prediction.model_version) ?? 0) + 1);
    process.stdout.write(`hot reload: ${JSON.stringify(Object.fromEntries(counts))} predictions per version\n`);
    expect([...counts.keys()].sort()).toEqual([1, 2]);
    expect(all.every((prediction) => prediction.fallback_reason === null)).toBe(true);

    await waitUntil(async () => (await count('predictions_fraud')) === historical + live.length, 60_000, 'predictions in ClickHouse');
    const [row] = await store.query<{ versions: string; events: string }>(
      'SELECT uniqExact(model_version) AS versions, uniqExact(event_id) AS events FROM predictions_fraud',
    );
    expect(Number(row?.events)).toBe(historical + live.length);
  });

  it('falls back with a reason when a version fails to load or an event comes too late for its features, and keeps running', async () => {
    // A version whose artifact is not a model: registered, promoted, and refused by the runtime.
    const garbage = await artifacts.put(new TextEncoder().encode('this is not an onnx model'), {
      name: 'fraud',
      inputs: [],
      fill: [],
      threshold: 0.5,
      trainer: 'none',
      metrics: {},
      baseline: {},
    });
    const [latest] = (await readModelRegistry(registryOptions())).slice(-1);
    const { registerModelVersion } = await import('../../models/registry.js');
    const broken = await registerModelVersion(registryOptions(), { ...latest!, artifact_sha256: garbage, created_at: Date.now() }, [
      'champion',
    ]);
    await waitUntil(
      () => watcher.loadFailure()?.includes(`version ${broken.version}`) ?? false,
      30_000,
      'the broken version to be refused',
    );
    const historical = history.filter((record) => record.topic === 'raw.transactions').length + live.length;
    await produce(
      live
        .slice(0, 1)
        .map((record) => ({ ...record, value: { ...record.value, transaction_id: 'after-broken-1', timestamp: Date.now() } })),
    );
    const afterBroken = (await readPredictions(historical + 1)).find((prediction) => prediction.event_id === 'transactions:after-broken-1');
    // Version 2 (the previous one) answered, marked as a fallback with the reason.
    expect(afterBroken).toMatchObject({ deployment: 'FALLBACK', model_version: 2 });
    expect(afterBroken?.fallback_reason).toMatch(/^model_load_failed: version 3 failed to load/);

    // An event far older than its card's newest one (beyond every view's grace): it counts in no
    // window and has no row, so it is scored by the fallback, with the views named.
    const card = live.at(-1)!.key;
    const serde = new AvroSerde(registry.url);
    const old = Date.now() - 3 * HOUR;
    const event = {
      transaction_id: 'late-1',
      card_id: card,
      merchant_id: 'm-1',
      merchant_category: '5411',
      amount: 10,
      currency: 'EUR',
      country: 'NL',
      channel: 'ONLINE',
      timestamp: old,
      event_id: 'transactions:late-1',
      event_time: old,
      ingest_time: Date.now(),
    };
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic: `${prefix}events.transactions`,
      messages: [{ key: card, value: await serde.encode(ids.get(`${prefix}events.transactions-value`)!, event) }],
    });
    await producer.disconnect();
    const predictions = await readPredictions(historical + 2);
    expect(predictions).toHaveLength(historical + 2);
    const late = predictions.find((prediction) => prediction.event_id === 'transactions:late-1');
    expect(late).toMatchObject({ deployment: 'FALLBACK', score: model.fallbackScore });
    expect(late?.fallback_reason).toMatch(/^late_event: card_txn_1h, card_txn_24h, card_amount_7d/);
    const fallbacks = (await metrics.getSingleMetric('sluice_prediction_fallbacks_total')?.get())?.values ?? [];
    expect(fallbacks.some((value) => value.labels.reason === 'late_event' && value.value >= 1)).toBe(true);
    expect(fallbacks.some((value) => value.labels.reason === 'model_load_failed' && value.value >= 1)).toBe(true);
    expect(watcher.current()?.version.version).toBe(2);
  });
});
