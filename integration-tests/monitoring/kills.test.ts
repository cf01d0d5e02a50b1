import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { topologySubjects } from '../../app/stages.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { silentLogger } from '../../common/logger.js';
import { uniformRandom } from '../../common/random.js';
import demo from '../../examples/fraud/sluice.config.js';
import { checkMonitoring, driftKey, performanceKey } from '../../jobs/monitoring.js';
import { ensureTopics, retryKafka } from '../../kafka/index.js';
import { toOnnx } from '../../models/network.js';
import { ArtifactStore, baselineOf, registerModelVersion } from '../../models/registry.js';
import {
  buildReference,
  decodeDriftPartial,
  decodePerformancePartial,
  type DriftRecord,
  type PerformanceRecord,
} from '../../monitoring/index.js';
import { AvroSerde, registerSchemas, startSchemaRegistry, type RunningSchemaRegistry } from '../../schemas/index.js';
import { ModelCatalog, monitoringTopics } from '../../streams/monitoring/index.js';
import { modelInputs } from '../../topology/index.js';
import { platformTopics, predictionTopics, sourceTopics } from '../../topology/topics.js';
import { fixedNetwork } from '../pipeline/demo-setup.js';
import { groupLag, readToEnd, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { pendingRecords } from './pending.js';
import { tieToParent } from '../../common/child-tie.js';

const FIXTURE = path.join(PROJECT_ROOT, 'integration-tests', 'fixtures', 'monitoring-process.ts');
const HOUR = 3_600_000;
const MINUTE = 60_000;
const HOURS = 8;
const PER_HOUR = 2_500;
const KILLS = 5;
const model = demo.models.find((candidate) => candidate.name === 'fraud')!;
const logger = silentLogger();

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(Math.max(Number.EPSILON, random()))) * Math.cos(2 * Math.PI * random());
}

/** Inputs of one scored transaction: log-normal amounts (×1.8 from `driftFrom`), card activity, categories. */
function inputs(random: () => number, drifted: boolean): { features: Record<string, number | null>; categories: Record<string, string> } {
  const features: Record<string, number | null> = {};
  for (const name of modelInputs(model))
    features[name] = name === 'amount' ? Math.exp(4 + 0.6 * gaussian(random)) * (drifted ? 1.8 : 1) : Math.floor(random() * 10);
  // A few values the monitoring must count, never bin: missing and not finite.
  if (random() < 0.01) features['card_txn_24h.merchant_count'] = null;
  if (random() < 0.005) features['card_amount_7d.amount_stddev'] = Number.NaN;
  return {
    features,
    categories: {
      merchant_category: drifted && random() < 0.3 ? '4829' : (['5411', '5812', '5999', '4111'][Math.floor(random() * 4)] ?? '5411'),
      country: ['NL', 'DE', 'FR'][Math.floor(random() * 3)] ?? 'NL',
      channel: ['ONLINE', 'IN_STORE', 'ATM'][Math.floor(random() * 3)] ?? 'ATM',
    },
  };
}

describe('the monitoring stages SIGKILLed at random points', () => {
  const prefix = `${uniqueName('monkills')}.`;
  const start = Math.floor(Date.UTC(2024, 2, 1) / HOUR) * HOUR;
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let ids: Map<string, number>;
  let dataDir: string;
  const children: ChildProcess[] = [];

  const spawnMonitoring = (): {
    child: ChildProcess;
    ready: Promise<void>;
    exited: Promise<number | null>;
    errors: () => string;
  } => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      env: {
        ...process.env,
        MON_BROKERS: inject('brokers').join(','),
        MON_REGISTRY: registry.url,
        MON_PREFIX: prefix,
        MON_DATA_DIR: dataDir,
        MON_MODELS_DIR: path.join(dataDir, 'models'),
        MON_SESSION_TIMEOUT_MS: String(Math.max(2_000, inject('minSessionTimeoutMs'))),
        // Small fetches: many end on transaction markers or aborted records, before a batch too large
        // to come with them. kafkajs resolves such a fetch itself, never handing it over; the stages
        // must continue after it (before they did, the restart after a kill looped there for ever).
        MON_MAX_BYTES: String(16 * 1024),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: PROJECT_ROOT,
    });
    tieToParent(child);
    children.push(child);
    let out = '';
    let err = '';
    // MON_LOG_DIR keeps each instance's log (MON_LOG_LEVEL=info or debug for more of it).
    const logDir = process.env.MON_LOG_DIR;
    const log = logDir === undefined ? undefined : createWriteStream(path.join(logDir, `monitoring-${children.length}.log`));
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      log?.write(chunk);
    });
    log?.on('error', () => undefined);
    child.once('close', () => log?.end());
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ready = waitUntil(
      () => {
        if (child.exitCode !== null) throw new Error(`monitoring exited (${child.exitCode}): ${err.slice(-2_000)}`);
        return out.includes('READY');
      },
      120_000,
      'the monitoring process to be ready',
    );
    ready.catch(() => undefined);
    return { child, ready, exited, errors: () => err.slice(-2_000) };
  };

  const groups = (): { group: string; topics: string[] }[] => {
    const topics = monitoringTopics((name) => `${prefix}sluice-${name}`);
    return [
      { group: `${prefix}sluice-monitoring-drift`, topics: [`${prefix}predictions.fraud`, topics.drift.partials] },
      {
        group: `${prefix}sluice-monitoring-performance`,
        topics: [`${prefix}predictions.fraud`, `${prefix}events.chargebacks`, topics.performance.outcomes, topics.performance.partials],
      },
    ];
  };
  /** Records of the inputs no committed offset of the groups covers yet (internal topics are transactional: see pendingRecords). */
  const lagByTopic = async (): Promise<Map<string, number>> => {
    const byTopic = new Map<string, number>();
    for (const { group, topics } of groups())
      for (const topic of topics)
        byTopic.set(
          `${group} ${topic}`,
          topic.includes('sluice-') ? await pendingRecords(admin, kafka, group, topic) : await groupLag(admin, group, topic),
        );
    return byTopic;
  };
  const lag = async (): Promise<number> => [...(await lagByTopic()).values()].reduce((sum, count) => sum + count, 0);

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-monkills-'));
    const layout = { prefix, partitions: 3 };
    await retryKafka(() =>
      ensureTopics(
        admin,
        [...platformTopics(layout), ...sourceTopics('chargebacks', layout), ...predictionTopics('fraud', layout)],
        logger,
      ),
    );
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    ids = await registerSchemas(registry.url, topologySubjects(prefix, demo), logger);

    // The champion: a fixed network, with the drift reference of its "training set".
    const random = uniformRandom(1);
    const training = Array.from({ length: 3_000 }, () => inputs(random, false));
    const names = modelInputs(model);
    const network = fixedNetwork(names);
    const sha = await new ArtifactStore(path.join(dataDir, 'models')).put(toOnnx(network, 'fraud'), {
      name: 'fraud',
      inputs: names,
      fill: [...network.mean],
      threshold: model.threshold,
      trainer: 'fixed',
      metrics: { auc: 0.9 },
      baseline: Object.fromEntries(names.map((name) => [name, baselineOf([])])),
      reference: buildReference({
        numeric: names.map((name) => ({ name, values: training.map((row) => row.features[name] ?? null) })),
        categorical: model.categorical.map((name) => ({ name, values: training.map((row) => row.categories[name] ?? null) })),
        scores: training.map(() => random() * 0.5),
      }),
    });
    await registerModelVersion(
      { kafka, topic: `${prefix}registry.models`, registryUrl: registry.url, schemaId: ids.get(`${prefix}registry.models-value`)! },
      {
        name: 'fraud',
        artifact_sha256: sha,
        trainer: 'fixed',
        params: {},
        metrics: { auc: 0.9, log_loss: 0.2 },
        dataset: { ranges: [], feature_versions: {} },
        code_commit: null,
        run_id: null,
        created_at: Date.now(),
      },
      ['champion'],
    );

    // Predictions of 8 hours (drift from hour 4) and chargebacks 10 minutes after 5% of them; then a
    // little later traffic on every partition, so that every window closes.
    const serde = new AvroSerde(registry.url);
    const predictions: { key: string; value: Buffer }[] = [];
    const chargebacks: { key: string; value: Buffer; time: number }[] = [];
    const traffic = uniformRandom(2);
    const total = HOURS * PER_HOUR;
    for (let index = 0; index < total + 60; index++) {
      const late = index >= total;
      const time = late
        ? start + (HOURS + 2) * HOUR + index
        : start + Math.floor((index / total) * HOURS * HOUR) - Math.floor(traffic() * 30_000);
      const card = late ? `card-late-${index}` : `card-${Math.floor(traffic() * 800)}`;
      const id = `t-${index}`;
      const { features, categories } = inputs(traffic, time >= start + 4 * HOUR);
      const score = traffic() * 0.6;
      const prediction = {
        event_id: `transactions:${id}`,
        entity_id: card,
        model_name: 'fraud',
        model_version: 1,
        deployment: traffic() < 0.02 ? 'FALLBACK' : 'CHAMPION',
        score,
        decision: score >= 0.5,
        threshold: 0.5,
        features,
        categories,
        fallback_reason: null,
        latency_ms: 1,
        event_time: time,
        predicted_at: time,
      };
      predictions.push({ key: card, value: await serde.encode(ids.get(`${prefix}predictions.fraud-value`)!, prediction) });
      if (late || traffic() < 0.05 + score * 0.1) {
        const at = late ? time + 3 * HOUR : time + 10 * MINUTE;
        const chargeback = {
          chargeback_id: `cb-${id}`,
          transaction_id: id,
          card_id: card,
          reason: 'FRAUD',
          amount: 10,
          timestamp: at,
          event_id: `chargebacks:cb-${id}`,
          event_time: at,
          ingest_time: at,
        };
        chargebacks.push({ key: card, time: at, value: await serde.encode(ids.get(`${prefix}events.chargebacks-value`)!, chargeback) });
      }
    }
    chargebacks.sort((left, right) => left.time - right.time);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let offset = 0; offset < predictions.length; offset += 5_000)
      await producer.send({ topic: `${prefix}predictions.fraud`, acks: -1, messages: predictions.slice(offset, offset + 5_000) });
    await producer.send({
      topic: `${prefix}events.chargebacks`,
      acks: -1,
      messages: chargebacks.map(({ key, value }) => ({ key, value })),
    });
    await producer.disconnect();
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await registry.stop();
    await admin.disconnect();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it(`${KILLS} kills: every drift and performance record exactly once, equal to a replay of the inputs`, async () => {
    let kills = 0;
    let killsWithWorkPending = 0;
    const random = uniformRandom(3);
    while (kills < KILLS) {
      const monitoring = spawnMonitoring();
      await monitoring.ready;
      await new Promise((resolve) => setTimeout(resolve, 300 + random() * 2_000));
      if ((await lag()) > 0) killsWithWorkPending++;
      monitoring.child.kill('SIGKILL');
      await monitoring.exited;
      kills++;
    }
    const final = spawnMonitoring();
    await final.ready;
    await waitUntil(
      async () => {
        if (final.child.exitCode !== null) throw new Error(`the monitoring process exited (${final.child.exitCode}): ${final.errors()}`);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return (await lag()) === 0;
      },
      300_000,
      'the monitoring stages to catch up',
    ).catch(async (error: unknown) => {
      const pending = await lagByTopic().then(
        (byTopic) => JSON.stringify([...byTopic].filter(([, count]) => count > 0)),
        (failure: unknown) => `unknown (${String(failure)})`,
      );
      throw new Error(`${String(error)}; still pending: ${pending}; last log: ${final.errors()}`);
    });
    final.child.kill('SIGTERM');
    expect(await final.exited).toBe(0);

    // Each partial is in the internal topics once. Read one record batch per fetch: fetches then
    // begin inside the killed instances' aborted transactions (kafkajs' own read_committed filter
    // let records of those through).
    const internal = monitoringTopics((name) => `${prefix}sluice-${name}`);
    const repeated = async (topic: string, identify: (value: Buffer) => string): Promise<string[]> => {
      const seen = new Map<string, number>();
      for (const message of await readToEnd(kafka, topic, { maxBytesPerPartition: 1 })) {
        const id = identify(message.value!);
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      expect(seen.size).toBeGreaterThan(0);
      return [...seen].filter(([, count]) => count > 1).map(([id, count]) => `${id} ×${count}`);
    };
    const driftPartials = await repeated(internal.drift.partials, (value) => {
      const partial = decodeDriftPartial(value);
      if (partial.kind === 'window') return `window ${partial.version} ${partial.start} ${partial.partition}`;
      if (partial.kind === 'block') return `block ${partial.version} ${partial.tick} ${partial.partition} ${partial.sequence}`;
      return `progress ${partial.partition} ${partial.through}`;
    });
    const performancePartials = await repeated(internal.performance.partials, (value) => {
      const partial = decodePerformancePartial(value);
      if (partial.kind === 'window') return `window ${partial.stage} ${partial.version} ${partial.start} ${partial.partition}`;
      return `progress ${partial.partition} ${partial.provisionalThrough} ${partial.finalThrough}`;
    });
    expect({ driftPartials, performancePartials }).toEqual({ driftPartials: [], performancePartials: [] });

    const serde = new AvroSerde(registry.url);
    const drift = await Promise.all(
      (await readToEnd(kafka, `${prefix}monitoring.drift`)).map(async (message) => (await serde.decode(message.value!)) as DriftRecord),
    );
    const performance = await Promise.all(
      (await readToEnd(kafka, `${prefix}monitoring.performance`)).map(
        async (message) => (await serde.decode(message.value!)) as PerformanceRecord,
      ),
    );
    const driftKeys = drift.map(driftKey);
    const performanceKeys = performance.map(performanceKey);
    console.log(
      `kills: ${kills} (${killsWithWorkPending} with work pending); ${drift.length} drift records (${drift
        .filter((record) => record.feature === '__dataset__')
        .reduce((sum, record) => sum + record.late_records, 0)} predictions counted late), ${performance.length} performance records`,
    );
    expect(kills).toBe(KILLS);
    expect(killsWithWorkPending).toBeGreaterThanOrEqual(KILLS - 1);
    expect(new Set(driftKeys).size).toBe(driftKeys.length);
    expect(new Set(performanceKeys).size).toBe(performanceKeys.length);

    // Every hour evaluated once, amounts and the merchant category drifting from hour 4.
    const tumbling = drift.filter((record) => record.window_kind === 'TUMBLING' && record.feature === '__dataset__');
    expect(tumbling.map((record) => (record.window_start - start) / HOUR)).toEqual(expect.arrayContaining([0, 1, 2, 3, 4, 5, 6, 7]));
    expect(tumbling.reduce((sum, record) => sum + record.predictions, 0)).toBe(HOURS * PER_HOUR);
    const verdict = (hour: number, feature: string): string | undefined =>
      drift.find((record) => record.window_kind === 'TUMBLING' && record.window_start === start + hour * HOUR && record.feature === feature)
        ?.verdict;
    expect([0, 1, 2, 3].map((hour) => verdict(hour, 'amount'))).toEqual(['NO_DRIFT', 'NO_DRIFT', 'NO_DRIFT', 'NO_DRIFT']);
    expect([4, 5, 6, 7].map((hour) => verdict(hour, 'amount'))).toEqual(['DRIFT', 'DRIFT', 'DRIFT', 'DRIFT']);
    expect([4, 5, 6, 7].map((hour) => verdict(hour, 'merchant_category'))).toEqual(['DRIFT', 'DRIFT', 'DRIFT', 'DRIFT']);
    const missing = drift.filter((record) => record.window_kind === 'TUMBLING' && record.feature === 'card_txn_24h.merchant_count');
    expect(missing.reduce((sum, record) => sum + record.missing_count, 0)).toBeGreaterThan(0);
    const invalid = drift.filter((record) => record.window_kind === 'TUMBLING' && record.feature === 'card_amount_7d.amount_stddev');
    expect(invalid.reduce((sum, record) => sum + record.invalid_count, 0)).toBeGreaterThan(0);
    expect(drift.some((record) => record.window_kind === 'LAST_N')).toBe(true);
    const finals = performance.filter((record) => record.stage === 'FINAL');
    expect(finals.length).toBeGreaterThanOrEqual(HOURS);
    expect(finals.every((record) => record.label_completeness === 1 && record.training_auc === 0.9)).toBe(true);

    // Replay equality: the same code over the inputs gives the same records, bit for bit.
    const reports = await checkMonitoring({
      kafka,
      topicPrefix: prefix,
      registryUrl: registry.url,
      models: [model],
      settings: demo.monitoring,
      catalog: new ModelCatalog({
        kafka,
        topic: `${prefix}registry.models`,
        registryUrl: registry.url,
        artifacts: new ArtifactStore(path.join(dataDir, 'models')),
        logger,
        sketchK: demo.monitoring.sketchK,
      }),
      outcomePartitions: 3,
    });
    console.log(JSON.stringify(reports.map(({ examples, ...report }) => ({ ...report, example: examples[0] }))));
    for (const report of reports) {
      expect(report.compared).toBeGreaterThan(0);
      expect(report.mismatchRate).toBe(0);
    }
  }, 600_000);
});
