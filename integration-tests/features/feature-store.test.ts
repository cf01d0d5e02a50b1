import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, silentLogger } from '../../common/logger.js';
import { checkConsistency } from '../../jobs/consistency.js';
import { demoEvents, type DemoRecord } from '../../examples/fraud/generator.js';
import { replayFeatures } from '../../jobs/replay.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { serveOps, type OpsServer } from '../../serving/ops-server.js';
import {
  ChdbEngine,
  EmbeddedOfflineStore,
  ensureTables,
  featureTable,
  insertNew,
  offlineTables,
  RemoteOfflineStore,
  serveSql,
  type SqlServer,
  type TableSpec,
} from '../../offline/index.js';
import { pointInTimeJoin, pointInTimeSql, type Label } from '../../offline/point-in-time.js';
import {
  AvroSerde,
  platformSubjects,
  sourceSubjects,
  registerSchemas,
  startSchemaRegistry,
  viewSubjects,
  type RunningSchemaRegistry,
} from '../../schemas/index.js';
import type { FeatureRow } from '../../streams/features/engine.js';
import { OnlineStore, onlineRoutes } from '../../serving/online.js';
import { featuresStage, featureVector } from '../../streams/features/stage.js';
import { ingestStage } from '../../streams/ingest/stage.js';
import { runStage, type RunningStage } from '../../streams/runtime/index.js';
import { runSink, type RunningSink } from '../../streams/sink/stage.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import { createTopic, groupLag, removeTempDirs, tempDir, testKafka, uniqueName, waitUntil } from '../helpers.js';
import { uniformRandom } from '../../common/random.js';
import demo from '../../examples/fraud/sluice.config.js';

const EVENTS = Number(process.env.FS_TEST_EVENTS ?? 50_000);
const HOUR = 3_600_000;
const logger = process.env.FS_LOG ? createLogger('warn') : silentLogger();

describe('feature store: ingest → features → sink on the real broker, replay, point-in-time sets', () => {
  const prefix = `${uniqueName('fs')}.`;
  const end = Date.now() - 60_000;
  const generated: DemoRecord[] = [...demoEvents({ seed: 7, events: EVENTS, end, spanMs: 3 * 24 * HOUR, cards: 400, users: 300 })];
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let ids: Map<string, number>;
  let versions: Map<string, number>;
  let store: EmbeddedOfflineStore;
  let sql: SqlServer;
  let tables: TableSpec[];
  const stages: RunningStage[] = [];
  const sinks: RunningSink[] = [];
  let ops: OpsServer | undefined;
  let online: OnlineStore;

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    tables = offlineTables({ sources: demo.sources.filter((source) => source.name !== 'chargebacks'), views: demo.views });
    // Every topic the tables read, plus the raw inputs: registries are compacted, one partition.
    for (const topic of ['raw.transactions', 'raw.clicks', ...tables.map((table) => table.topic)]) {
      await (topic.startsWith('registry.')
        ? createTopic(admin, `${prefix}${topic}`, 1, { 'cleanup.policy': 'compact' })
        : createTopic(admin, `${prefix}${topic}`, 3));
    }
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    ids = await registerSchemas(
      registry.url,
      [
        ...platformSubjects(prefix),
        ...demo.sources
          .filter((source) => source.name !== 'chargebacks')
          .flatMap((source) => sourceSubjects(prefix, source.name, source.rawSchema, source.eventsSchema)),
        ...viewSubjects(
          prefix,
          demo.views.map((view) => view.name),
        ),
      ],
      logger,
    );
    versions = await publishFeatureViews(demo.views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`)!,
      logger,
    });
    store = new EmbeddedOfflineStore(new ChdbEngine(await tempDir('sluice-fs-chdb-')));
    sql = await serveSql(store.engine, { host: '127.0.0.1', port: 0, readonly: true, logger });
    await ensureTables(store, tables);
  });

  afterAll(async () => {
    for (const sink of sinks) await sink.stop();
    for (const stage of stages) await stage.stop();
    await ops?.close();
    await sql.close();
    await store.close();
    await registry.stop();
    await admin.disconnect();
    await removeTempDirs();
  });

  const count = async (table: string, where = '1'): Promise<number> =>
    Number((await store.query<{ n: string }>(`SELECT count() AS n FROM ${table} WHERE ${where}`))[0]?.n);

  const startSink = async (groupId: string): Promise<RunningSink> => {
    const sink = await runSink({
      brokers: inject('brokers'),
      groupId,
      topicPrefix: prefix,
      tables,
      store,
      registryUrl: registry.url,
      dlqTopic: `${prefix}dlq`,
      metrics: createMetricsRegistry(false),
      logger,
    });
    sinks.push(sink);
    return sink;
  };

  /** Every count and sum the tests compare before and after replays. */
  const snapshot = async (): Promise<unknown[]> => {
    const results: unknown[] = [];
    for (const table of tables.filter((candidate) => candidate.topic.startsWith('events.') || candidate.topic.startsWith('features.'))) {
      const numeric = table.columns
        .filter((column) => column.type === 'Nullable(Float64)' || column.type.startsWith('Decimal'))
        .map((column) => `round(sum(\`${column.name}\`), 4)`);
      results.push(
        table.name,
        await store.query(
          `SELECT count() AS rows, uniqExact(event_id) AS ids${numeric.length > 0 ? `, ${numeric.join(', ')}` : ''} FROM ${table.name}`,
        ),
      );
    }
    return results;
  };

  it('computes every demo view live, serves lookups that match hand-computed values, and sinks every event once', async () => {
    // ---- produce 50,000 demo events (JSON) and run ingest, features and the sink -------------
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    for (let start = 0; start < generated.length; start += 5_000) {
      const slice = generated.slice(start, start + 5_000);
      await producer.sendBatch({
        acks: -1,
        topicMessages: (['raw.transactions', 'raw.clicks'] as const).map((topic) => ({
          topic: `${prefix}${topic}`,
          messages: slice
            .filter((record) => record.topic === topic)
            .map((record) => ({ key: record.key, value: JSON.stringify(record.value) })),
        })),
      });
    }
    await producer.disconnect();

    const metrics = createMetricsRegistry(false);
    const stateDir = await tempDir('sluice-fs-state-');
    const common = { brokers: inject('brokers'), dlqTopic: `${prefix}dlq`, metrics, logger, stateDir, topicPrefix: prefix };
    stages.push(
      await runStage(
        ingestStage({
          sources: demo.sources.filter((source) => source.name !== 'chargebacks'),
          topicPrefix: prefix,
          serdeFor: (reader) => new AvroSerde(registry.url, reader),
          schemaIds: {
            events: { transactions: ids.get(`${prefix}events.transactions-value`)!, clicks: ids.get(`${prefix}events.clicks-value`)! },
            quality: ids.get(`${prefix}monitoring.quality-value`)!,
          },
          metrics,
        }),
        { ...common, groupId: `${prefix}ingest` },
      ),
    );
    const features = await runStage(
      featuresStage({
        views: demo.views,
        versions,
        topicPrefix: prefix,
        serdeFor: (reader) => new AvroSerde(registry.url, reader),
        schemaIds: Object.fromEntries(demo.views.map((view) => [view.name, ids.get(`${prefix}features.${view.name}-value`)!])),
        metrics,
      }),
      { ...common, groupId: `${prefix}features` },
    );
    stages.push(features);
    await startSink(`${prefix}sink`);

    const transactions = generated.filter((record) => record.topic === 'raw.transactions');
    const clicks = generated.filter((record) => record.topic === 'raw.clicks');
    const expectedRows = transactions.length * 3 + clicks.length;
    const progress = setInterval(() => {
      if (!process.env.FS_LOG) return;
      void (async () => {
        const lags = await Promise.all([
          groupLag(admin, `${prefix}ingest`, `${prefix}raw.transactions`),
          groupLag(admin, `${prefix}features`, `${prefix}events.transactions`),
          groupLag(admin, `${prefix}sink`, `${prefix}features.card_txn_1h`),
          count('features_user_engagement_7d'),
        ]);
        process.stdout.write(
          `progress ${new Date().toISOString()} lags ${lags.join(' ')} events ${await count('events_transactions')} f24 ${await count('features_card_txn_24h')}\n`,
        );
      })();
    }, 5_000);
    await waitUntil(
      async () =>
        (await count('events_transactions')) === transactions.length &&
        (await count('events_clicks')) === clicks.length &&
        (await count('features_card_txn_1h')) === transactions.length &&
        (await count('features_card_txn_24h')) === transactions.length &&
        (await count('features_card_amount_7d')) === transactions.length &&
        (await count('features_user_engagement_7d')) === clicks.length,
      240_000,
      'every event and row in ClickHouse',
    );
    clearInterval(progress);

    // ---- ClickHouse holds every event once ------------------------------------------------
    expect(await count('events_transactions')).toBe(transactions.length);
    expect(Number((await store.query<{ n: string }>('SELECT uniqExact(event_id) AS n FROM events_transactions'))[0]?.n)).toBe(
      transactions.length,
    );
    expect(await count('events_clicks')).toBe(clicks.length);
    let featureRows = 0;
    for (const view of demo.views) featureRows += await count(`features_${view.name}`);
    expect(featureRows).toBe(expectedRows);

    // ---- online lookups against values computed by hand from the generated events ----------
    online = new OnlineStore(features, demo.views, prefix);
    ops = await serveOps(metrics, { live: () => true, ready: () => true, detail: () => ({}) }, '127.0.0.1', 0, [
      onlineRoutes(() => online),
    ]);
    const byCard = new Map<string, { time: number; index: number; amount: number; merchant: string }[]>();
    transactions.forEach((record, index) => {
      const list = byCard.get(record.key) ?? [];
      list.push({
        time: record.value.timestamp as number,
        index,
        amount: record.value.amount as number,
        merchant: record.value.merchant_id as string,
      });
      byCard.set(record.key, list);
    });
    const sampled = [...byCard.keys()].filter((_, index) => index % 40 === 0);
    expect(sampled.length).toBeGreaterThanOrEqual(8);
    for (const card of sampled) {
      const events = byCard.get(card)!;
      // The latest row: the newest event (ties: the last to arrive), over what had arrived by then.
      const newest = events.reduce((best, event) => (event.time >= best.time ? event : best));
      const seen = events
        .filter((event) => event.index <= newest.index)
        .sort((left, right) => left.time - right.time || left.index - right.index);
      const within = (size: number) => seen.filter((event) => event.time > newest.time - size && event.time <= newest.time);
      const day = within(24 * HOUR);
      const week = within(7 * 24 * HOUR);
      const got24 = await online.get('card_txn_24h', card, newest.time);
      expect(got24).toMatchObject({ status: 'PRESENT', event_time: newest.time, version: versions.get('card_txn_24h') });
      expect(got24.values?.txn_count).toBe(day.length);
      expect(got24.values?.amount_sum).toBeCloseTo(
        day.reduce((sum, event) => sum + event.amount, 0),
        6,
      );
      expect(got24.values?.merchant_count).toBe(new Set(day.map((event) => event.merchant)).size);
      const got7d = await online.get('card_amount_7d', card, newest.time);
      expect(got7d.values?.amount_mean).toBeCloseTo(week.reduce((sum, event) => sum + event.amount, 0) / week.length, 6);
      expect(got7d.values?.amount_max).toBe(Math.max(...week.map((event) => event.amount)));
      const got1h = await online.get('card_txn_1h', card, newest.time);
      expect(got1h.values?.txn_count).toBe(within(HOUR).length);
      // TTL: three hours later the 1h view (TTL 2h) is missing, never stale; the 24h view is not.
      expect(await online.get('card_txn_1h', card, newest.time + 3 * HOUR)).toMatchObject({ status: 'OUTSIDE_MAX_AGE', values: null });
      expect((await online.get('card_txn_24h', card, newest.time + 3 * HOUR)).status).toBe('PRESENT');
    }
    expect((await online.get('card_txn_24h', 'card-that-never-paid')).status).toBe('NOT_FOUND');

    // ---- the same over HTTP, and bad requests -----------------------------------------------
    const card = sampled[0]!;
    const opsUrl = ops.url;
    const single = await fetch(`${opsUrl}/features/card_txn_24h/${card}?at=${end}`);
    expect(single.status).toBe(200);
    expect(await single.json()).toEqual(JSON.parse(JSON.stringify(await online.get('card_txn_24h', card, end))));
    expect((await fetch(`${opsUrl}/features/no_such_view/${card}`)).status).toBe(404);
    const batch = await fetch(`${opsUrl}/features`, {
      method: 'POST',
      body: JSON.stringify({ views: ['card_txn_24h', 'card_amount_7d'], entities: [card, 'nobody'], at: end }),
    });
    expect(batch.status).toBe(200);
    const body = (await batch.json()) as { results: { entity_id: string; features: Record<string, { status: string }> }[] };
    expect(body.results.map((result) => [result.entity_id, result.features.card_txn_24h?.status])).toEqual([
      [card, 'PRESENT'],
      ['nobody', 'NOT_FOUND'],
    ]);
    for (const malformed of [
      '{"views": "card_txn_24h"}',
      'not json',
      '{"views": ["card_txn_24h"], "entities": []}',
      '{"views": ["x"], "entities": ["a"], "extra": 1}',
    ]) {
      expect((await fetch(`${opsUrl}/features`, { method: 'POST', body: malformed })).status).toBe(400);
    }
    expect((await fetch(`${opsUrl}/features`, { method: 'POST', body: '{"views": ["no_such_view"], "entities": ["a"]}' })).status).toBe(
      404,
    );
  });

  it('recomputes every (entity, event) row identically by replay: mismatch rate 0', async () => {
    const reports = await checkConsistency({ kafka, topicPrefix: prefix, registryUrl: registry.url, views: demo.views, versions });
    for (const report of reports) {
      process.stdout.write(`consistency ${report.view}: ${report.compared} compared, mismatch rate ${report.mismatchRate}\n`);
      expect(report).toMatchObject({ mismatched: 0, onlyLive: 0, onlyReplay: 0, mismatchRate: 0 });
      expect(report.compared).toBeGreaterThan(0);
      expect(report.compared).toBe(await count(`features_${report.view}`));
    }
  });

  it('replaying the topics twice (backfill and a fresh sink) leaves query results unchanged', async () => {
    const before = await snapshot();
    let liveRows = 0;
    for (const table of tables.filter((candidate) => candidate.topic.startsWith('events.') || candidate.topic.startsWith('features.')))
      liveRows += await count(table.name);
    expect(liveRows).toBe(EVENTS * 2 + generated.filter((record) => record.topic === 'raw.transactions').length * 2);
    for (let round = 0; round < 2; round++) {
      await replayFeatures({
        kafka,
        topicPrefix: prefix,
        registryUrl: registry.url,
        views: demo.views,
        versions,
        onRows: async (rows) => {
          for (const view of demo.views) {
            const table = featureTable(view);
            await insertNew(
              store,
              table,
              rows
                .filter((row) => row.view === view.name)
                .map((row) => table.toRow(featureVector(row), { partition: -1, offset: '-1', timestamp: 0, key: null, headers: {} })),
            );
          }
        },
      });
      // A new sink group re-reads every topic from the start.
      const sink = await startSink(`${prefix}sink-replay-${round}`);
      // Every event and every feature row read again (quality reports come on top).
      const started = Date.now();
      await waitUntil(
        () => {
          if (process.env.FS_LOG && (Date.now() - started) % 5_000 < 100)
            process.stdout.write(`replay sink ${JSON.stringify(sink.status())} of ${liveRows}\n`);
          return sink.status().inserted + sink.status().duplicates >= liveRows;
        },
        180_000,
        'the replaying sink to read every topic',
      );
      expect(sink.status().inserted).toBe(0);
      await sink.stop();
    }
    expect(await snapshot()).toEqual(before);
  });

  it('point-in-time training sets by replay and by SQL (embedded and over HTTP) are equal', async () => {
    const random = uniformRandom(99);
    const cards = [...new Set(generated.filter((record) => record.topic === 'raw.transactions').map((record) => record.key))];
    const labels: Label[] = Array.from({ length: 2_000 }, (_, index) => ({
      label_id: `l${String(index).padStart(5, '0')}`,
      entity_id: cards[Math.floor(random() * cards.length)]!,
      label_time: end - Math.floor(random() * 3 * 24 * HOUR),
      label: random() < 0.1 ? 1 : 0,
    }));
    const requests = demo.views
      .filter((view) => view.source.name === 'transactions')
      .map((view) => ({ view, version: versions.get(view.name)! }));
    const rows: FeatureRow[] = [];
    await replayFeatures({
      kafka,
      topicPrefix: prefix,
      registryUrl: registry.url,
      views: requests.map((request) => request.view),
      versions,
      onRows: (batch) => void rows.push(...batch),
    });
    const byReplay = pointInTimeJoin(rows, labels, requests);
    const bySql = await pointInTimeSql(store, labels, requests);
    expect(bySql).toEqual(byReplay);
    const present = byReplay.filter((row) => row['features']['card_txn_24h.txn_count'] !== null).length;
    expect(present).toBeGreaterThan(1_000);
    // The same SQL through @clickhouse/client against the embedded store's writer socket (as jobs of other processes do).
    const remote = new RemoteOfflineStore('http://sluice-writer', { socketPath: sql.writerSocket });
    try {
      expect(await pointInTimeSql(remote, labels, requests)).toEqual(byReplay);
    } finally {
      await remote.close();
    }
  });
});
