import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { inject } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import demo from '../../examples/fraud/sluice.config.js';
import { demoEvents, type DemoRecord } from '../../examples/fraud/generator.js';
import { replayFeatures } from '../../jobs/replay.js';
import { OnnxScorer, toBatch, toOnnx } from '../../models/network.js';
import { AvroSerde } from '../../schemas/index.js';
import { readToEnd, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { setUpDemo } from './demo-setup.js';
import { tieToParent } from '../../common/child-tie.js';

/**
 * The fused pipeline of the fraud demo run as separate processes (integration-tests/fixtures/
 * pipeline-process.ts), with everything they need: topics, the schema registry, the feature
 * registry, a champion model (a fixed logistic regression, so scores are known without
 * training), and the verifiers — predictions and feature rows read to the end offsets, checked
 * exactly once and equal to what a replay of the events topics computes.
 */
export const FIXTURE = path.join(PROJECT_ROOT, 'integration-tests', 'fixtures', 'pipeline-process.ts');
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
  /** Records of events.transactions whose event id is already there (ingest's dedup failed). */
  readonly mismatchSample: readonly string[];
  readonly duplicateEvents: number;
  readonly duplicateEventSample: readonly string[];
}

export async function setUpPipeline(
  name: string,
  options: {
    readonly events: number;
    readonly partitions?: number;
    /** The instances' state cache (SLUICE_STATE_CACHE_MB); their default when absent. */
    readonly stateCacheMb?: number;
  },
): Promise<Harness> {
  const prefix = `${uniqueName(name)}.`;
  const kafka = testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `sluice-${name}-`));
  const { registry, versions, network, inputs } = await setUpDemo({
    kafka,
    admin,
    brokers: inject('brokers'),
    prefix,
    partitions: options.partitions ?? 6,
    modelsDir: path.join(dataDir, 'models'),
  });

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
          ...(process.env.PIPELINE_TEST_LOGS ? { PIPE_LOG_LEVEL: 'info' } : {}),
          ...(options.stateCacheMb === undefined ? {} : { SLUICE_STATE_CACHE_MB: String(options.stateCacheMb) }),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: PROJECT_ROOT,
      });
      tieToParent(child);
      children.push(child);
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      // PIPELINE_TEST_LOGS=<folder>: every instance's log lines kept there, for a failure's autopsy.
      const logs = process.env.PIPELINE_TEST_LOGS;
      if (logs) {
        const file = path.join(logs, `${prefix}${instance}-${child.pid}.log`);
        child.stderr.on('data', (chunk: Buffer) => void fs.appendFile(file, chunk));
      }
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
      const mismatchSample: string[] = [];
      const mismatch = (what: string): void => {
        featureMismatches++;
        if (mismatchSample.length < 6) mismatchSample.push(what);
      };
      for (const view of demo.views) {
        const seen = new Set<string>();
        for (const message of await readToEnd(kafka, `${prefix}features.${view.name}`)) {
          const row = (await serde.decode(message.value!)) as {
            event_id: string;
            event_sequence: number;
            values: Record<string, number | null>;
          };
          featureRows++;
          if (seen.has(row.event_id)) duplicateFeatureRows++;
          seen.add(row.event_id);
          const expected = replayed.get(row.event_id)?.get(view.name);
          if (!expected)
            mismatch(`${view.name} ${row.event_id}: live only (p${message.partition}@${message.offset} seq ${row.event_sequence})`);
          else if (JSON.stringify(expected) !== JSON.stringify(row.values)) {
            mismatch(
              `${view.name} ${row.event_id}: live ${JSON.stringify(row.values)} replay ${JSON.stringify(expected)} (p${message.partition} seq ${row.event_sequence})`,
            );
          }
        }
        for (const [eventId, byView] of replayed)
          if (byView.has(view.name) && !seen.has(eventId)) mismatch(`${view.name} ${eventId}: replay only`);
      }
      // Predictions: one per transaction event, scored from the replayed features by the same network.
      const events = await readToEnd(kafka, `${prefix}events.transactions`);
      const eventIds = new Set<string>();
      const copies = new Map<string, string[]>();
      for (const message of events) {
        const eventId = ((await serde.decode(message.value!)) as { event_id: string }).event_id;
        eventIds.add(eventId);
        copies.set(eventId, [
          ...(copies.get(eventId) ?? []),
          `p${message.partition}@${message.offset}#${message.headers['sluice.seq'] ?? '-'}`,
        ]);
      }
      const duplicatedEvents = [...copies].filter(([, where]) => where.length > 1);
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
        mismatchSample,
        duplicateEvents: duplicatedEvents.length,
        duplicateEventSample: duplicatedEvents.slice(0, 5).map(([eventId, where]) => `${eventId}: ${where.join(' ')}`),
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
