import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import * as tf from '@tensorflow/tfjs';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { createKafka, startEphemeralKafka } from '../kafka/index.js';
import { demoEvents } from '../examples/fraud/generator.js';
import { ModelWatcher } from '../models/deployment.js';
import { OnnxScorer, toBatch, toOnnx } from '../models/network.js';
import { ArtifactStore, registerModelVersion } from '../models/registry.js';
import { changeRollout, startRollout } from '../models/rollout-registry.js';
import { train } from '../models/trainer.js';
import { createMetricsRegistry } from '../common/metrics.js';
import { AvroSerde, registerSchemas, startSchemaRegistry } from '../schemas/index.js';
import { featuresAsOfEvent, OnlineStore } from '../serving/online.js';
import { featuresStage } from '../streams/features/stage.js';
import { inferenceStage } from '../streams/inference/stage.js';
import { ingestStage } from '../streams/ingest/stage.js';
import { runStage, type RunningStage } from '../streams/runtime/index.js';
import { publishFeatureViews } from '../streams/features/registry.js';
import { modelInputs } from '../topology/models.js';
import { percentile, printTable } from './report.js';
import { uniformRandom } from '../common/random.js';
import { topologySubjects } from '../app/stages.js';
import demo from '../examples/fraud/sluice.config.js';
import { retryKafka } from '../kafka/index.js';

/**
 * Inference numbers: onnxruntime-node rows/s at batch sizes 1, 64 and 1,024; training seconds per
 * epoch (TensorFlow.js, wasm and cpu backends); predictions/s of the inference stage alone (one
 * Node process, features already computed); end-to-end latency from an event's production to its
 * committed prediction (ingest → features → inference, exactly-once) at 1,000 and 5,000 events/s.
 */
const PARTITIONS = 6;
const model = demo.models.find((candidate) => candidate.name === 'fraud');

function syntheticRows(count: number, width: number, seed: number): { rows: number[][]; labels: number[] } {
  const random = uniformRandom(seed);
  const rows: number[][] = [];
  const labels: number[] = [];
  for (let index = 0; index < count; index++) {
    const row = Array.from({ length: width }, () => random() * 100);
    rows.push(row);
    labels.push((row[0] ?? 0) + (row[1] ?? 0) > 150 ? 1 : 0);
  }
  return { rows, labels };
}

export async function main(): Promise<void> {
  if (!model) throw new Error('no fraud model');
  const rows: Record<string, string | number>[] = [];
  const inputs = modelInputs(model);

  // ---- training seconds per epoch, and onnxruntime-node at several batch sizes ---------------
  const data = syntheticRows(50_000, inputs.length, 1);
  const trained = await train(data.rows, data.labels, {
    kind: 'mlp',
    features: inputs,
    seed: 1,
    epochs: 3,
    learningRate: 0.01,
    batchSize: 256,
    hidden: 16,
  });
  rows.push({
    measure: `training, MLP 16 hidden, 50,000 rows × ${inputs.length} (${trained.backend})`,
    value: `${(trained.epochSeconds.reduce((sum, seconds) => sum + seconds, 0) / trained.epochSeconds.length).toFixed(2)} s/epoch`,
  });
  await tf.setBackend('cpu');
  const onCpu = await train(data.rows, data.labels, {
    kind: 'mlp',
    features: inputs,
    seed: 1,
    epochs: 3,
    learningRate: 0.01,
    batchSize: 256,
    hidden: 16,
  });
  rows.push({
    measure: `training, MLP 16 hidden, 50,000 rows × ${inputs.length} (cpu)`,
    value: `${(onCpu.epochSeconds.reduce((sum, seconds) => sum + seconds, 0) / onCpu.epochSeconds.length).toFixed(2)} s/epoch`,
  });
  await tf.setBackend(trained.backend);
  const logistic = await train(data.rows, data.labels, {
    kind: 'logistic',
    features: inputs,
    seed: 1,
    epochs: 3,
    learningRate: 0.01,
    batchSize: 256,
  });
  rows.push({
    measure: `training, logistic regression, 50,000 rows (${logistic.backend})`,
    value: `${(logistic.epochSeconds.reduce((sum, seconds) => sum + seconds, 0) / logistic.epochSeconds.length).toFixed(2)} s/epoch`,
  });
  const scorer = await OnnxScorer.load(toOnnx(trained.network, 'bench'), inputs.length);
  for (const batchSize of [1, 64, 1_024]) {
    const batch = toBatch(trained.network, data.rows.slice(0, batchSize));
    const calls = Math.max(20, Math.floor(200_000 / batchSize));
    const started = performance.now();
    for (let call = 0; call < calls; call++) await scorer.score(batch);
    const seconds = (performance.now() - started) / 1000;
    rows.push({
      measure: `onnxruntime-node, batch ${batchSize}`,
      value: `${Math.round((calls * batchSize) / seconds)} rows/s (${((seconds / calls) * 1e6).toFixed(0)} µs/call)`,
    });
  }
  await scorer.close();

  // ---- the stages on a local broker ------------------------------------------------------------
  const config = loadConfig();
  const logger = createLogger('warn', 'bench');
  const cluster = await startEphemeralKafka(config, logger, '1g');
  const registry = await startSchemaRegistry({ brokers: cluster.brokers, topic: '_schemas', host: '127.0.0.1', port: 0, logger });
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'bench-inference' });
  const stages: RunningStage[] = [];
  let watcher: ModelWatcher | undefined;
  // The model artifacts and the stages' state: removed at the end.
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-bench-inference-'));
  try {
    const prefix = 'bench.';
    const admin = kafka.admin();
    await admin.connect();
    const topics = [
      'raw.transactions',
      'raw.clicks',
      'raw.chargebacks',
      'events.transactions',
      'events.clicks',
      'events.chargebacks',
      'dlq',
      'monitoring.quality',
      'predictions.fraud',
      'predictions.fraud.shadow',
      ...demo.views.map((view) => `features.${view.name}`),
    ];
    await retryKafka(() =>
      admin.createTopics({
        waitForLeaders: true,
        topics: [
          ...topics.map((topic) => ({ topic: `${prefix}${topic}`, numPartitions: PARTITIONS, replicationFactor: 1 })),
          ...['registry.features', 'registry.models', 'registry.deployments'].map((topic) => ({
            topic: `${prefix}${topic}`,
            numPartitions: 1,
            replicationFactor: 1,
          })),
        ],
      }),
    );
    await admin.disconnect();
    const ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
    const versions = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`) ?? 0,
      logger,
    });
    const artifacts = new ArtifactStore(path.join(scratch, 'models'));
    const sha = await artifacts.put(toOnnx(trained.network, 'fraud'), {
      name: 'fraud',
      inputs,
      fill: [...trained.network.mean],
      threshold: 0.5,
      trainer: 'tfjs-mlp',
      metrics: {},
      baseline: {},
    });
    const registryOptions = {
      kafka,
      topic: `${prefix}registry.models`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.models-value`) ?? 0,
      deployments: { topic: `${prefix}registry.deployments`, schemaId: ids.get(`${prefix}registry.deployments-value`) ?? 0 },
    };
    const version = (aliases: string[]) =>
      registerModelVersion(
        registryOptions,
        {
          name: 'fraud',
          artifact_sha256: sha,
          trainer: 'tfjs-mlp',
          params: {},
          metrics: {},
          dataset: { ranges: [], feature_versions: {} },
          code_commit: null,
          run_id: null,
          created_at: Date.now(),
        },
        aliases,
      );
    await version(['champion']);
    // The same network as a second version: the shadow of the shadow measurement.
    const shadowVersion = (await version([])).version;
    const metrics = createMetricsRegistry(false);
    const stateDir = path.join(scratch, 'state');
    await fs.mkdir(stateDir);
    const options = (group: string) => ({
      brokers: cluster.brokers,
      groupId: group,
      dlqTopic: `${prefix}dlq`,
      metrics,
      logger,
      stateDir,
      topicPrefix: prefix,
      guarantee: 'exactly_once' as const,
    });
    const serdeFor = (reader?: ConstructorParameters<typeof AvroSerde>[1]): AvroSerde => new AvroSerde(registry.url, reader);
    stages.push(
      await runStage(
        ingestStage({
          sources: demo.sources,
          topicPrefix: prefix,
          serdeFor,
          schemaIds: {
            events: Object.fromEntries(demo.sources.map((source) => [source.name, ids.get(`${prefix}events.${source.name}-value`) ?? 0])),
            quality: ids.get(`${prefix}monitoring.quality-value`) ?? 0,
          },
          metrics,
        }),
        options('ingest'),
      ),
    );
    const features = await runStage(
      featuresStage({
        views: demo.views,
        versions,
        topicPrefix: prefix,
        serdeFor,
        schemaIds: Object.fromEntries(demo.views.map((view) => [view.name, ids.get(`${prefix}features.${view.name}-value`) ?? 0])),
        metrics,
      }),
      options('features'),
    );
    stages.push(features);
    watcher = new ModelWatcher({
      kafka,
      topic: `${prefix}registry.models`,
      deploymentsTopic: `${prefix}registry.deployments`,
      registryUrl: registry.url,
      model: 'fraud',
      artifacts,
      logger,
      maxWaitMs: 0,
    });
    await watcher.start();
    while (!watcher.current()) await new Promise((resolve) => setTimeout(resolve, 50));
    const online = new OnlineStore(features, demo.views, prefix);
    const counted = async (metric: string): Promise<number> =>
      ((await metrics.getSingleMetric(metric)?.get())?.values ?? []).reduce((sum, value) => sum + value.value, 0);
    const predictionsOf = (): Promise<number> => counted('sluice_predictions_total');
    const featureRowsOf = async (): Promise<number> =>
      ((await metrics.getSingleMetric('sluice_records_in_total')?.get())?.values ?? [])
        .filter((value) => value.labels.stage === 'features')
        .reduce((sum, value) => sum + value.value, 0);

    // Stage alone: 20,000 transactions already through ingest and features, then inference.
    const backlog = [
      ...demoEvents({ seed: 5, events: 20_000, end: Date.now(), spanMs: 3_600_000, cards: 2_000, transactionShare: 1 }),
    ].filter((record) => record.topic === 'raw.transactions');
    await produceJson(kafka, prefix, backlog);
    while ((await featureRowsOf()) < backlog.length) await new Promise((resolve) => setTimeout(resolve, 100));
    const inference = (group: string): Promise<RunningStage> =>
      runStage(
        inferenceStage({
          model,
          watcher: watcher!,
          features: featuresAsOfEvent(online),
          topicPrefix: prefix,
          serdeFor,
          schemaId: ids.get(`${prefix}predictions.fraud-value`) ?? 0,
          shadowSchemaId: ids.get(`${prefix}predictions.fraud.shadow-value`) ?? 0,
          metrics,
        }),
        options(group),
      );
    const started = performance.now();
    const alone = await inference('inference');
    stages.push(alone);
    while ((await predictionsOf()) < backlog.length) await new Promise((resolve) => setTimeout(resolve, 50));
    const stageSeconds = (performance.now() - started) / 1000;
    rows.push({
      measure: 'inference stage alone (exactly-once, 6 partitions, features ready)',
      value: `${Math.round(backlog.length / stageSeconds)} predictions/s (${backlog.length} in ${stageSeconds.toFixed(1)} s)`,
    });
    await alone.stop();
    stages.splice(stages.indexOf(alone), 1);

    // The same backlog again (another group) while a shadow runs: each event scored twice, two outputs.
    const shadow = await startRollout(registryOptions, {
      model: 'fraud',
      strategy: 'SHADOW',
      candidate: shadowVersion,
      share: 0,
      actor: 'bench',
      reason: 'shadow cost',
    });
    while (!watcher.shadow()) await new Promise((resolve) => setTimeout(resolve, 50));
    const shadowStarted = performance.now();
    stages.push(await inference('inference-shadow'));
    while ((await predictionsOf()) < 2 * backlog.length || (await counted('sluice_shadow_predictions_total')) < backlog.length)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const shadowSeconds = (performance.now() - shadowStarted) / 1000;
    rows.push({
      measure: 'inference stage alone with a shadow version (the shadow fused in the same task and transaction)',
      value: `${Math.round(backlog.length / shadowSeconds)} predictions/s, each with its shadow prediction (${backlog.length} in ${shadowSeconds.toFixed(1)} s; ${(shadowSeconds / stageSeconds).toFixed(2)}× the time without)`,
    });

    // The latency measurements below are of the champion alone.
    await changeRollout(registryOptions, shadow, { action: 'ABORT', state: 'ABORTED', share: 0, actor: 'bench', reason: 'measured' });
    while (watcher.shadow()) await new Promise((resolve) => setTimeout(resolve, 50));

    // End to end at a fixed rate: event produced → prediction committed.
    for (const rate of [1_000, 5_000]) {
      const seconds = 10;
      const records = [
        ...demoEvents({
          seed: rate,
          events: rate * seconds,
          end: Date.now() + seconds * 1000,
          spanMs: seconds * 1000,
          cards: 2_000,
          transactionShare: 1,
        }),
      ].filter((record) => record.topic === 'raw.transactions');
      const latencies: number[] = [];
      const consumer = kafka.consumer({ groupId: `bench-latency-${rate}`, readUncommitted: false, maxWaitTimeInMs: 20 });
      const serde = new AvroSerde(registry.url);
      const sentAt = new Map<string, number>();
      await consumer.connect();
      await consumer.subscribe({ topic: `${prefix}predictions.fraud`, fromBeginning: false });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (!message.value) return;
          const prediction = (await serde.decode(message.value)) as { event_id: string };
          const sent = sentAt.get(prediction.event_id);
          if (sent !== undefined) latencies.push(Date.now() - sent);
        },
      });
      await new Promise((resolve) => setTimeout(resolve, 3_000)); // joined, positioned at the end
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const begin = Date.now();
      for (let index = 0; index < records.length; index += rate / 50) {
        const slice = records.slice(index, index + rate / 50);
        const due = begin + (index / rate) * 1000;
        if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
        const now = Date.now();
        for (const record of slice) sentAt.set(`transactions:${String(record.value.transaction_id)}`, now);
        await producer.send({
          topic: `${prefix}raw.transactions`,
          messages: slice.map((record) => ({ key: record.key, value: JSON.stringify({ ...record.value, timestamp: now }) })),
        });
      }
      await producer.disconnect();
      const deadline = Date.now() + 120_000;
      while (latencies.length < records.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      await consumer.disconnect();
      latencies.sort((left, right) => left - right);
      rows.push({
        measure: `end to end at ${rate} events/s for ${seconds} s (raw → prediction committed)`,
        value: `p50 ${percentile(latencies, 50)} ms, p99 ${percentile(latencies, 99)} ms (${latencies.length}/${records.length} received)`,
      });
    }
  } finally {
    for (const stage of stages.reverse()) await stage.stop();
    await watcher?.stop();
    await registry.stop();
    await cluster.stop();
    await fs.rm(scratch, { recursive: true, force: true });
  }
  printTable('Inference (fraud model: 9 inputs, MLP 16 hidden; local broker; one Node process)', rows);
}

async function produceJson(
  kafka: Kafka,
  prefix: string,
  records: readonly { topic: string; key: string; value: Record<string, unknown> }[],
): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let start = 0; start < records.length; start += 5_000) {
    await producer.send({
      topic: `${prefix}raw.transactions`,
      messages: records.slice(start, start + 5_000).map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
    });
  }
  await producer.disconnect();
}
