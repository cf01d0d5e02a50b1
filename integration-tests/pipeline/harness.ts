import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { inject } from 'vitest';
import { topologySubjects } from '../../app/stages.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import demo from '../../examples/fraud/sluice.config.js';
import { demoEvents, type DemoRecord } from '../../examples/fraud/generator.js';
import { replayFeatures } from '../../jobs/replay.js';
import { OnnxScorer, toBatch, toOnnx, type ScoringNetwork } from '../../models/network.js';
import { ArtifactStore, baselineOf, registerModelVersion } from '../../models/registry.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import { modelInputs } from '../../topology/index.js';
import { createTopic, readToEnd, testKafka, uniqueName, waitUntil } from '../helpers.js';

/**
 * The fused pipeline of the fraud demo run as separate processes (integration-tests/fixtures/
 * pipeline-process.ts), with everything they need: topics, the schema registry, the feature
 * registry, a champion model (a fixed logistic regression, so scores are known without
 * training), and the verifiers — predictions and feature rows read to the end offsets, checked
 * exactly once and equal to what a replay of the events topics computes.
 */
export const FIXTURE = path.join(PROJECT_ROOT, 'integration-tests', 'fixtures', 'pipeline-process.ts');
const model = demo.models.find((candidate) => candidate.name === 'fraud')!;
const HOUR = 3_600_000;

export interface PipelineProcess {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

export interface Harness {
  readonly prefix: string;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly group: string;
  /** Raw records, transactions and clicks first in event-time order, then chargebacks. */
  readonly records: readonly DemoRecord[];
  start(instance: string): PipelineProcess;
  produce(records: readonly DemoRecord[]): Promise<void>;
  /** Input not yet committed by the pipeline's group, over every raw topic. */
  lag(): Promise<number>;
  verify(): Promise<Verification>;
  close(): Promise<void>;
}

export interface Verification {
  readonly transactions: number;
  readonly predictions: number;
  readonly duplicatePredictions: number;
  readonly missingPredictions: number;
  /** Predictions whose score differs from the replayed features scored by the same model (> 1e-6). */
  readonly scoreMismatches: number;
  readonly featureRows: number;
  readonly duplicateFeatureRows: number;
  /** Feature rows whose values differ from a replay of events.* (or exist on one side only). */
  readonly featureMismatches: number;
  readonly fallbacks: number;
}

/** A fixed logistic regression over the fraud model's inputs: amount and card activity raise the score. */
function fixedNetwork(inputs: readonly string[]): ScoringNetwork {
  const width = inputs.length;
  const weights = Float32Array.from(inputs.map((input, index) => (input === 'amount' ? 0.9 : 0.3 - index * 0.02)));
  return {
    features: inputs,
    mean: new Float32Array(width).fill(0),
    std: Float32Array.from(inputs.map((input) => (input.includes('amount') ? 200 : 5))),
    layers: [{ inputs: width, outputs: 1, weights, bias: Float32Array.from([-2]), activation: 'sigmoid' }],
  };
}

export async function setUpPipeline(name: string, options: { readonly events: number; readonly partitions?: number }): Promise<Harness> {
  const prefix = `${uniqueName(name)}.`;
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const logger = silentLogger();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `sluice-${name}-`));
  const partitions = options.partitions ?? 6;
  for (const source of demo.sources) {
    await createTopic(admin, `${prefix}raw.${source.name}`, partitions);
    await createTopic(admin, `${prefix}events.${source.name}`, partitions);
  }
  for (const view of demo.views) await createTopic(admin, `${prefix}features.${view.name}`, partitions);
  await createTopic(admin, `${prefix}predictions.fraud`, partitions);
  for (const topic of ['dlq', 'monitoring.quality']) await createTopic(admin, `${prefix}${topic}`, 1);
  for (const topic of ['registry.features', 'registry.models'])
    await createTopic(admin, `${prefix}${topic}`, 1, { 'cleanup.policy': 'compact' });
  const registry: RunningSchemaRegistry = await startSchemaRegistry({
    brokers: inject('brokers'),
    topic: `${prefix}_schemas`,
    host: '127.0.0.1',
    port: 0,
    logger,
  });
  const ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);
  const versions = await publishFeatureViews(demo.views, {
    kafka,
    topic: `${prefix}registry.features`,
    registryUrl: registry.url,
    schemaId: ids.get(`${prefix}registry.features-value`)!,
    logger,
  });

  // The champion: a fixed network, registered as a trained one would be.
  const inputs = modelInputs(model);
  const network = fixedNetwork(inputs);
  const artifacts = new ArtifactStore(path.join(dataDir, 'models'));
  const sha = await artifacts.put(toOnnx(network, 'fraud'), {
    name: 'fraud',
    inputs,
    fill: [...network.mean],
    threshold: model.threshold,
    trainer: 'fixed',
    metrics: {},
    baseline: Object.fromEntries(inputs.map((input) => [input, baselineOf([])])),
  });
  await registerModelVersion(
    { kafka, topic: `${prefix}registry.models`, registryUrl: registry.url, schemaId: ids.get(`${prefix}registry.models-value`)! },
    {
      name: 'fraud',
      artifact_sha256: sha,
      trainer: 'fixed',
      params: {},
      metrics: {},
      dataset: { ranges: [], feature_versions: Object.fromEntries(versions) },
      code_commit: null,
      run_id: null,
      created_at: Date.now(),
    },
    ['champion'],
  );

  const end = Date.now();
  const records = [
    ...demoEvents({
      seed: 5,
      events: options.events,
      end,
      spanMs: 12 * HOUR,
      cards: 2_000,
      users: 1_000,
      fraudRate: 0.01,
      chargebackDelayMs: 20 * 60_000,
    }),
  ];
  const group = `${prefix}sluice-pipeline`;
  const children: ChildProcess[] = [];

  const harness: Harness = {
    prefix,
    kafka,
    admin,
    group,
    records,
    start(instance) {
      const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
        env: {
          ...process.env,
          PIPE_BROKERS: inject('brokers').join(','),
          PIPE_REGISTRY: registry.url,
          PIPE_PREFIX: prefix,
          PIPE_DATA_DIR: path.join(dataDir, instance),
          PIPE_MODELS_DIR: path.join(dataDir, 'models'),
          PIPE_SESSION_TIMEOUT_MS: String(Math.max(2_000, inject('minSessionTimeoutMs'))),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: PROJECT_ROOT,
      });
      children.push(child);
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const ready = waitUntil(
        () => {
          if (child.exitCode !== null) throw new Error(`pipeline ${instance} exited (${child.exitCode}): ${err.slice(-2_000)}`);
          return out.includes('READY');
        },
        180_000,
        `pipeline ${instance} to be ready`,
      );
      ready.catch(() => undefined);
      return { child, ready, exited, stderr: () => err };
    },
    async produce(batch) {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        for (let start = 0; start < batch.length; start += 5_000) {
          const slice = batch.slice(start, start + 5_000);
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
      } finally {
        await producer.disconnect();
      }
    },
    async lag() {
      let total = 0;
      for (const source of demo.sources) {
        const topic = `${prefix}raw.${source.name}`;
        const [committed, ends] = await Promise.all([
          admin.fetchOffsets({ groupId: group, topics: [topic] }),
          admin.fetchTopicOffsets(topic),
        ]);
        const byPartition = new Map(committed[0]?.partitions.map((entry) => [entry.partition, Number(entry.offset)]) ?? []);
        total += ends.reduce((sum, end) => sum + Number(end.high) - Math.max(0, byPartition.get(end.partition) ?? 0), 0);
      }
      return total;
    },
    async verify() {
      const serde = new AvroSerde(registry.url);
      // Replay: the rows every view has for every event, from the events topics.
      const replayed = new Map<string, Map<string, Record<string, number | null>>>();
      await replayFeatures({
        kafka,
        topicPrefix: prefix,
        registryUrl: registry.url,
        views: demo.views,
        versions,
        onRows: (rows) => {
          for (const row of rows) {
            const byView = replayed.get(row.eventId) ?? new Map<string, Record<string, number | null>>();
            byView.set(row.view, { ...row.values });
            replayed.set(row.eventId, byView);
          }
        },
      });
      // Live feature rows, exactly once and equal to the replay.
      let featureRows = 0;
      let duplicateFeatureRows = 0;
      let featureMismatches = 0;
      for (const view of demo.views) {
        const seen = new Set<string>();
        for (const message of await readToEnd(kafka, `${prefix}features.${view.name}`)) {
          const row = (await serde.decode(message.value!)) as { event_id: string; values: Record<string, number | null> };
          featureRows++;
          if (seen.has(row.event_id)) duplicateFeatureRows++;
          seen.add(row.event_id);
          const expected = replayed.get(row.event_id)?.get(view.name);
          if (!expected || JSON.stringify(expected) !== JSON.stringify(row.values)) featureMismatches++;
        }
        for (const [eventId, byView] of replayed) if (byView.has(view.name) && !seen.has(eventId)) featureMismatches++;
      }
      // Predictions: one per transaction event, scored from the replayed features by the same network.
      const events = await readToEnd(kafka, `${prefix}events.transactions`);
      const eventIds = new Set<string>();
      for (const message of events) eventIds.add(((await serde.decode(message.value!)) as { event_id: string }).event_id);
      const predictions = await readToEnd(kafka, `${prefix}predictions.fraud`);
      const decoded = await Promise.all(
        predictions.map(
          async (message) =>
            (await serde.decode(message.value!)) as {
              event_id: string;
              score: number;
              deployment: string;
              features: Record<string, number | null>;
            },
        ),
      );
      const counts = new Map<string, number>();
      for (const prediction of decoded) counts.set(prediction.event_id, (counts.get(prediction.event_id) ?? 0) + 1);
      const scored = decoded.filter((prediction) => prediction.deployment === 'CHAMPION');
      const scorer = await OnnxScorer.load(toOnnx(network, 'fraud'), inputs.length);
      let scoreMismatches = 0;
      try {
        const rows = scored.map((prediction) => {
          const byView = replayed.get(prediction.event_id);
          return inputs.map((input) => {
            const dot = input.indexOf('.');
            if (dot < 0) return prediction.features[input] ?? null;
            const values = byView?.get(input.slice(0, dot));
            return values ? (values[input.slice(dot + 1)] ?? null) : Number.NaN;
          });
        });
        const expected = await scorer.score(toBatch(network, rows));
        scored.forEach((prediction, index) => {
          if (Math.abs((expected[index] ?? Number.NaN) - prediction.score) > 1e-6 || rows[index]?.some((value) => Number.isNaN(value)))
            scoreMismatches++;
        });
      } finally {
        await scorer.close();
      }
      return {
        transactions: eventIds.size,
        predictions: decoded.length,
        duplicatePredictions: [...counts.values()].filter((count) => count > 1).length,
        missingPredictions: [...eventIds].filter((eventId) => !counts.has(eventId)).length,
        scoreMismatches,
        featureRows,
        duplicateFeatureRows,
        featureMismatches,
        fallbacks: decoded.length - scored.length,
      };
    },
    async close() {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      await registry.stop();
      await admin.disconnect();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}
