import type { Admin, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../../common/logger.js';
import { createMetricsRegistry } from '../../common/metrics.js';
import { uniformRandom } from '../../common/random.js';
import { checkConsistency } from '../../jobs/consistency.js';
import { replayFeatures } from '../../jobs/replay.js';
import { AvroSerde, platformSubjects, registerSchemas, sourceSubjects, startSchemaRegistry, viewSubjects } from '../../schemas/index.js';
import type { RunningSchemaRegistry } from '../../schemas/index.js';
import type { FeatureRow } from '../../streams/features/engine.js';
import { featuresStage, featureVector } from '../../streams/features/stage.js';
import { ingestStage } from '../../streams/ingest/stage.js';
import { runStage, type RunningStage } from '../../streams/runtime/index.js';
import { publishFeatureViews } from '../../streams/features/registry.js';
import { count, featureView, max, slidingWindow, source, sum, tumblingWindow } from '../../topology/index.js';
import { createTopic, groupLag, removeTempDirs, tempDir, testKafka, uniqueName, waitUntil } from '../helpers.js';

/**
 * Ranges in event time over history: taxi trips of January 2001 produced today (so every Kafka
 * record time is today), computed live by the real ingest and features stages, then backfilled and
 * checked for one day of event time.
 */
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const JAN_10 = Date.UTC(2001, 0, 10);
const logger = silentLogger();

const trips = source({
  name: 'trips',
  schema: {
    type: 'record',
    name: 'Trip',
    namespace: 'test.taxi',
    fields: [
      { name: 'trip_id', type: 'string' },
      { name: 'driver_id', type: 'string' },
      { name: 'fare', type: 'double' },
      { name: 'pickup_at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  },
  description: 'Taxi trips.',
  idField: 'trip_id',
  eventTimeField: 'pickup_at',
  entityField: 'driver_id',
});
const views = [
  featureView({
    name: 'driver_trips_1h',
    source: trips,
    window: slidingWindow('1h'),
    features: { trips: count(), fares: sum('fare') },
    grace: '10m',
    owner: 'test',
    description: 'Trips and fares per driver over the last hour.',
  }),
  featureView({
    name: 'driver_day',
    source: trips,
    window: tumblingWindow('1d'),
    features: { trips: count(), top_fare: max('fare') },
    owner: 'test',
    description: 'Trips and the largest fare per driver since midnight.',
  }),
];

/** Four days of trips (Jan 8 to 11, 2001) in production order; a few arrive late, some beyond the grace. */
function generateTrips(): Record<string, unknown>[] {
  const random = uniformRandom(11);
  const records: Record<string, unknown>[] = [];
  let clock = JAN_10 - 2 * DAY;
  for (let index = 0; clock < JAN_10 + 2 * DAY; index++) {
    clock += Math.floor(random() * 8 * MIN) + 1;
    const lateBy = random() < 0.04 ? Math.floor(random() * 2 * HOUR) : 0;
    records.push({
      trip_id: `trip-${index}`,
      driver_id: `driver-${Math.floor(random() * 12)}`,
      fare: Math.round((5 + random() * 60) * 100) / 100,
      pickup_at: clock - lateBy,
    });
  }
  return records;
}

describe('event-time ranges over history: backfill and consistency check', () => {
  const prefix = `${uniqueName('range')}.`;
  const records = generateTrips();
  const inDay = (time: number): boolean => time >= JAN_10 && time < JAN_10 + DAY;
  const tripsOfDay = records.filter((record) => inDay(record.pickup_at as number));
  let kafka: Kafka;
  let admin: Admin;
  let registry: RunningSchemaRegistry;
  let ids: Map<string, number>;
  let versions: Map<string, number>;
  const stages: RunningStage[] = [];

  beforeAll(async () => {
    kafka = testKafka();
    admin = kafka.admin();
    await admin.connect();
    for (const topic of ['raw.trips', 'events.trips', 'dlq', 'monitoring.quality', ...views.map((view) => `features.${view.name}`)])
      await createTopic(admin, `${prefix}${topic}`, 3);
    await createTopic(admin, `${prefix}registry.features`, 1, { 'cleanup.policy': 'compact' });
    registry = await startSchemaRegistry({ brokers: inject('brokers'), topic: `${prefix}_schemas`, host: '127.0.0.1', port: 0, logger });
    ids = await registerSchemas(
      registry.url,
      [
        ...platformSubjects(prefix),
        ...sourceSubjects(prefix, 'trips', trips.rawSchema, trips.eventsSchema),
        ...viewSubjects(
          prefix,
          views.map((view) => view.name),
        ),
      ],
      logger,
    );
    versions = await publishFeatureViews(views, {
      kafka,
      topic: `${prefix}registry.features`,
      registryUrl: registry.url,
      schemaId: ids.get(`${prefix}registry.features-value`)!,
      logger,
    });

    // Produced today: every record time is now, every event time in January 2001.
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({
      topic: `${prefix}raw.trips`,
      acks: -1,
      messages: records.map((record) => ({ key: String(record.driver_id), value: JSON.stringify(record) })),
    });
    await producer.disconnect();

    const metrics = createMetricsRegistry(false);
    const stateDir = await tempDir('sluice-range-state-');
    const common = { brokers: inject('brokers'), dlqTopic: `${prefix}dlq`, metrics, logger, stateDir, topicPrefix: prefix };
    stages.push(
      await runStage(
        ingestStage({
          sources: [trips],
          topicPrefix: prefix,
          serdeFor: (reader) => new AvroSerde(registry.url, reader),
          schemaIds: { events: { trips: ids.get(`${prefix}events.trips-value`)! }, quality: ids.get(`${prefix}monitoring.quality-value`)! },
          metrics,
        }),
        { ...common, groupId: `${prefix}ingest` },
      ),
      await runStage(
        featuresStage({
          views,
          versions,
          topicPrefix: prefix,
          serdeFor: (reader) => new AvroSerde(registry.url, reader),
          schemaIds: Object.fromEntries(views.map((view) => [view.name, ids.get(`${prefix}features.${view.name}-value`)!])),
          metrics,
        }),
        { ...common, groupId: `${prefix}features` },
      ),
    );
    await waitUntil(
      async () => (await groupLag(admin, `${prefix}ingest`, `${prefix}raw.trips`)) === 0,
      120_000,
      'ingest to read every trip',
    );
    // events.trips is written in transactions: each partition ends with a commit marker, one past its last event.
    await waitUntil(
      async () => {
        const [committed, ends] = await Promise.all([
          admin.fetchOffsets({ groupId: `${prefix}features`, topics: [`${prefix}events.trips`] }),
          admin.fetchTopicOffsets(`${prefix}events.trips`),
        ]);
        const done = new Map(committed[0]?.partitions.map((entry) => [entry.partition, Number(entry.offset)]));
        return ends.every((end) => Number(end.high) === 0 || (done.get(end.partition) ?? -1) >= Number(end.high) - 1);
      },
      120_000,
      'features to process every trip',
    );
  });

  afterAll(async () => {
    for (const stage of stages) await stage.stop();
    await registry.stop();
    await admin.disconnect();
    await removeTempDirs();
  });

  const replay = async (range: Parameters<typeof replayFeatures>[0]['range']) => {
    const rows: FeatureRow[] = [];
    const report = await replayFeatures({
      kafka,
      topicPrefix: prefix,
      registryUrl: registry.url,
      views,
      versions,
      ...(range ? { range } : {}),
      onRows: (batch) => void rows.push(...batch),
    });
    return { report, rows };
  };

  it('backfills one day of event time: its trips, with the rows a replay of everything gives them', async () => {
    expect(tripsOfDay.length).toBeGreaterThan(200);
    const day = await replay({ eventTime: { from: JAN_10, to: JAN_10 + DAY } });
    expect(day.report.selected).toBe(tripsOfDay.length);
    expect(day.report.events).toBe(records.length);
    const everything = await replay(undefined);
    const expected = everything.rows.filter((row) => inDay(row.eventTime));
    const key = (row: FeatureRow): string => `${row.view}|${row.eventId}`;
    expect(day.rows.map(key).sort()).toEqual(expected.map(key).sort());
    expect(new Map(day.rows.map((row) => [key(row), row]))).toEqual(new Map(expected.map((row) => [key(row), row])));
    // Late trips (beyond a view's grace) emit no row for it, as live.
    expect(day.report.lateEvents).toBeGreaterThan(0);
    for (const view of views) expect(day.rows.filter((row) => row.view === view.name).length).toBeLessThanOrEqual(tripsOfDay.length);
  });

  it('record time knows nothing of 2001: the same dates as record time select no trip', async () => {
    const byRecordTime = await replay({ record: { fromTime: JAN_10, toTime: JAN_10 + DAY } });
    expect(byRecordTime.report.selected).toBe(0);
    expect(byRecordTime.rows).toEqual([]);
  });

  it('checks one day of event time like with like: every served row of the day compared, mismatch rate 0', async () => {
    const reports = await checkConsistency({
      kafka,
      topicPrefix: prefix,
      registryUrl: registry.url,
      views,
      versions,
      range: { eventTime: { from: JAN_10, to: JAN_10 + DAY } },
    });
    const everything = await replay(undefined);
    for (const report of reports) {
      const expected = everything.rows.filter((row) => row.view === report.view && inDay(row.eventTime)).length;
      expect(report).toMatchObject({ compared: expected, mismatched: 0, onlyLive: 0, onlyReplay: 0, mismatchRate: 0 });
    }
  });

  it('still finds planted mismatches inside the range, and only those', async () => {
    const everything = await replay(undefined);
    const rowOf = (predicate: (row: FeatureRow) => boolean): FeatureRow => {
      const found = everything.rows.find((row) => row.view === 'driver_trips_1h' && predicate(row));
      if (!found) throw new Error('no such row');
      return found;
    };
    const inside = rowOf((row) => inDay(row.eventTime));
    const outside = rowOf((row) => row.eventTime < JAN_10);
    const encoder = new AvroSerde(registry.url);
    const schemaId = ids.get(`${prefix}features.driver_trips_1h-value`)!;
    const wrong = (row: FeatureRow, eventId = row.eventId): Promise<Buffer> =>
      encoder.encode(schemaId, featureVector({ ...row, eventId, values: { ...row.values, fares: (row.values.fares ?? 0) + 1 } }));
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({
      topic: `${prefix}features.driver_trips_1h`,
      acks: -1,
      messages: [
        // A served value that differs from its recomputation, in the range and outside it.
        { key: inside.entity, value: await wrong(inside) },
        { key: outside.entity, value: await wrong(outside) },
        // A served row of an event that does not exist, in the range.
        { key: inside.entity, value: await wrong(inside, 'trips:no-such-trip') },
      ],
    });
    await producer.disconnect();

    const check = (range: Parameters<typeof checkConsistency>[0]['range']) =>
      checkConsistency({ kafka, topicPrefix: prefix, registryUrl: registry.url, views, versions, ...(range ? { range } : {}) });
    const [day, dayOfOther] = await check({ eventTime: { from: JAN_10, to: JAN_10 + DAY } });
    expect(day).toMatchObject({ view: 'driver_trips_1h', mismatched: 1, onlyLive: 1, onlyReplay: 0 });
    expect(day?.mismatchRate).toBeGreaterThan(0);
    expect(day?.examples[0]).toMatchObject({ entity: inside.entity, eventId: inside.eventId });
    expect(dayOfOther).toMatchObject({ view: 'driver_day', mismatched: 0, onlyLive: 0, mismatchRate: 0 });

    // Everything: both wrong values and the orphan row.
    const [all] = await check(undefined);
    expect(all).toMatchObject({ mismatched: 2, onlyLive: 1, onlyReplay: 0 });
    // By record time (when ingest wrote the events: today): the same, counted among the events selected.
    const [today] = await check({ record: { fromTime: Date.now() - DAY } });
    expect(today).toMatchObject({ mismatched: 2, onlyReplay: 0 });
  });
});
