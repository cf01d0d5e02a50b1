import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../common/config.js';
import { uniformRandom } from '../../common/random.js';
import { createKafka, readRanges, resolveRanges } from '../../kafka/index.js';
import { waitUntil } from '../helpers.js';
import { cleanEnv, runSluice, spawnSluice, waitForOutput, type SluiceProcess } from '../cli/sluice-process.js';

/**
 * A user's own pipeline, declared outside the repository: taxi trips keyed by driver_id with their
 * own raw schema, two views per driver, complaints as labels and a model on the views. The CLI runs
 * it as a user would — `sluice up --topology <dir>` (no demo), `sluice produce` of CSV files,
 * `sluice train`, lookups, SQL — with the history in January 2001, so everything is in event time.
 */
const MIN = 60_000;
const HOUR = 60 * MIN;
const JAN_10 = Date.UTC(2001, 0, 10);
const iso = (time: number): string => new Date(time).toISOString();

const TOPOLOGY = `import { count, defineTopology, featureView, max, mean, model, slidingWindow, source, sum } from 'sluice';

const trips = source({
  name: 'trips',
  schema: new URL('./schemas/raw.trips.avsc', import.meta.url),
  description: 'Taxi trips, reported when the ride starts.',
  idField: 'trip_id',
  eventTimeField: 'pickup_at',
  entityField: 'driver_id',
  rules: { trip_id: { required: true }, driver_id: { required: true }, distance_km: { min: 0 } },
});

const complaints = source({
  name: 'complaints',
  schema: new URL('./schemas/raw.complaints.avsc', import.meta.url),
  description: 'Rider complaints about a trip: the label.',
  idField: 'complaint_id',
  eventTimeField: 'filed_at',
  entityField: 'driver_id',
});

const driverTrips1h = featureView({
  name: 'driver_trips_1h',
  source: trips,
  window: slidingWindow('1h'),
  features: { trips: count(), fares: sum('fare') },
  ttl: '2h',
  ttlClock: 'event',
  owner: 'ops',
  description: 'Trips and fares per driver over the last hour.',
});

const driverPace1d = featureView({
  name: 'driver_pace_1d',
  source: trips,
  window: slidingWindow('1d'),
  features: { duration_mean: mean('duration_min'), distance_mean: mean('distance_km'), duration_max: max('duration_min') },
  ttl: '2d',
  owner: 'ops',
  description: 'How long a driver takes per trip, over the last day.',
});

const complaint = model({
  name: 'complaint',
  description: 'Probability that a trip draws a complaint.',
  owner: 'ops',
  source: trips,
  fields: ['distance_km', 'duration_min'],
  features: [
    { view: driverTrips1h, features: ['trips', 'fares'] },
    { view: driverPace1d, features: ['duration_mean', 'duration_max'] },
  ],
  label: { source: complaints, joinField: 'trip_id', window: '1h' },
  trainer: 'logistic',
  params: { epochs: 40, learningRate: 0.05, batchSize: 64 },
  threshold: 0.5,
});

export default defineTopology({ name: 'taxi', sources: [trips, complaints], views: [driverTrips1h, driverPace1d], models: [complaint] });
`;

const TRIPS_SCHEMA = {
  type: 'record',
  name: 'Trip',
  namespace: 'example.taxi',
  fields: [
    { name: 'trip_id', type: 'string' },
    { name: 'driver_id', type: 'string' },
    { name: 'zone', type: 'string', default: '' },
    { name: 'distance_km', type: 'double' },
    { name: 'duration_min', type: 'double' },
    { name: 'fare', type: 'double' },
    { name: 'pickup_at', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
};
const COMPLAINTS_SCHEMA = {
  type: 'record',
  name: 'Complaint',
  namespace: 'example.taxi',
  fields: [
    { name: 'complaint_id', type: 'string' },
    { name: 'trip_id', type: 'string' },
    { name: 'driver_id', type: 'string' },
    { name: 'filed_at', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
};

interface Trip {
  readonly trip_id: string;
  readonly driver_id: string;
  readonly zone: string;
  readonly distance_km: number;
  readonly duration_min: number;
  readonly fare: number;
  readonly pickup_at: number;
}

/** Trips from `start`, one every ~`gapMs`; slow trips (a few drivers make most) draw complaints. */
function generate(seed: number, count: number, start: number, gapMs: number, idFrom: number): { trips: Trip[]; complaints: string[][] } {
  const random = uniformRandom(seed);
  const trips: Trip[] = [];
  const complaints: string[][] = [];
  for (let index = 0; index < count; index++) {
    const driver = Math.floor(random() * 16);
    const distance = Math.round((1 + random() * 14) * 10) / 10;
    const slow = random() < (driver < 3 ? 0.5 : 0.08);
    const pace = slow ? 5 + random() * 3 : 1.8 + random() * 1.2;
    const trip: Trip = {
      trip_id: `trip-${idFrom + index}`,
      driver_id: `driver-${driver}`,
      zone: `zone-${Math.floor(random() * 5)}`,
      distance_km: distance,
      duration_min: Math.round(distance * pace * 10) / 10,
      fare: Math.round((3 + distance * 2.1) * 100) / 100,
      pickup_at: start + index * gapMs + Math.floor(random() * (gapMs / 2)),
    };
    trips.push(trip);
    if (random() < (slow ? 0.8 : 0.03))
      complaints.push([`complaint-${trip.trip_id}`, trip.trip_id, trip.driver_id, iso(trip.pickup_at + trip.duration_min * MIN + 5 * MIN)]);
  }
  return { trips, complaints };
}

const tripsCsv = (trips: readonly Trip[]): string =>
  `trip_id,driver_id,zone,distance_km,duration_min,fare,pickup_at\n${trips
    .map((trip) => [trip.trip_id, trip.driver_id, trip.zone, trip.distance_km, trip.duration_min, trip.fare, iso(trip.pickup_at)].join(','))
    .join('\n')}\n`;

describe('a topology of its own, outside the repository', () => {
  // 06:00–18:00 of 2001-01-10: the history the model learns from; 20:00–20:30: trips scored live.
  const history = generate(5, 480, JAN_10 + 6 * HOUR, 90_000, 0);
  const live = generate(6, 30, JAN_10 + 20 * HOUR, MIN, 10_000);
  const allTrips = [...history.trips, ...live.trips];
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let up: SluiceProcess | undefined;
  let repositoryBefore: string;
  const sluice = (args: readonly string[], timeoutMs = 90_000) => runSluice(args, env, timeoutMs, dir);
  const sql = async (query: string): Promise<string> => {
    const result = await sluice(['sql', query, '--format', 'TSV']);
    expect(result.stderr).toBe('');
    return result.stdout.trim();
  };
  const repositoryState = (): string =>
    execFileSync('git', ['status', '--porcelain', '--ignored', '--untracked-files=normal'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });

  beforeAll(async () => {
    repositoryBefore = repositoryState();
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sluice-taxi-'));
    await fs.mkdir(path.join(dir, 'schemas'));
    await fs.mkdir(path.join(dir, 'data'));
    await fs.writeFile(path.join(dir, 'sluice.config.ts'), TOPOLOGY);
    await fs.writeFile(path.join(dir, 'schemas', 'raw.trips.avsc'), JSON.stringify(TRIPS_SCHEMA, null, 2));
    await fs.writeFile(path.join(dir, 'schemas', 'raw.complaints.avsc'), JSON.stringify(COMPLAINTS_SCHEMA, null, 2));
    await fs.writeFile(path.join(dir, 'data', 'trips.csv'), tripsCsv(history.trips));
    await fs.writeFile(path.join(dir, 'data', 'trips-live.csv'), tripsCsv(live.trips));
    await fs.writeFile(
      path.join(dir, 'data', 'complaints.csv'),
      `complaint_id,trip_id,driver_id,filed_at\n${history.complaints.map((row) => row.join(',')).join('\n')}\n`,
    );
    // The stack's data in the project folder (the default, .sluice/ in the working directory).
    env = cleanEnv({ SLUICE_TOPOLOGY: undefined, SLUICE_LOG_LEVEL: 'warn' });
  });

  afterAll(async () => {
    if (up && up.child.exitCode === null) {
      up.child.kill('SIGINT');
      const timer = setTimeout(() => up?.child.kill('SIGKILL'), 60_000);
      await up.exited;
      clearTimeout(timer);
    }
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('runs from sluice up --topology <dir> to predictions of a model trained on it, in event time', async () => {
    up = spawnSluice(['up', '--topology', dir], env, dir);
    await waitForOutput(up, /sluice is up/, 150_000);
    expect(up.stdout()).toMatch(/pipeline +trips, complaints: ingest → features → inference-complaint, fused/);

    // ---- what the topology declares exists: topics, subjects, tables ----------------------------
    const status = JSON.parse((await sluice(['status', '--json'])).stdout) as Record<string, string>;
    expect(status.dataDir).toBe(path.join(dir, '.sluice'));
    expect(status.predict).toMatch(/\/predict$/);
    const admin = createKafka({ brokers: [status.kafka!], clientId: 'own-topology-admin' }).admin();
    await admin.connect();
    const topics = await admin.listTopics();
    await admin.disconnect();
    const declared = ['raw.trips', 'events.trips', 'raw.complaints', 'events.complaints', 'features.driver_trips_1h'];
    expect(topics).toEqual(expect.arrayContaining([...declared, 'features.driver_pace_1d', 'predictions.complaint']));
    expect(topics).not.toContain('raw.transactions');
    const subjects = async (): Promise<string[]> => ((await (await fetch(`${status.schemaRegistry}/subjects`)).json()) as string[]).sort();
    const registered = await subjects();
    expect(registered).toEqual(
      expect.arrayContaining([
        ...declared.map((topic) => `${topic}-value`),
        'features.driver_pace_1d-value',
        'predictions.complaint-value',
      ]),
    );
    expect(registered).not.toContain('raw.transactions-value');
    const tables = (await sql('SHOW TABLES')).split('\n');
    expect(tables).toEqual(
      expect.arrayContaining([
        'events_trips',
        'events_complaints',
        'features_driver_trips_1h',
        'features_driver_pace_1d',
        'predictions_complaint',
      ]),
    );

    // ---- CSV in, keyed by driver_id: events and a row per view per trip ---------------------------
    const sentTrips = await sluice(['produce', 'trips', 'data/trips.csv']);
    expect(sentTrips.stdout).toContain(`sent ${history.trips.length} records to raw.trips`);
    expect((await sluice(['produce', 'complaints', 'data/complaints.csv'])).code).toBe(0);
    const rowsIn = async (table: string): Promise<number> => Number(await sql(`SELECT count() FROM ${table}`));
    await waitUntil(
      async () =>
        (await rowsIn('features_driver_trips_1h')) === history.trips.length &&
        (await rowsIn('features_driver_pace_1d')) === history.trips.length &&
        (await rowsIn('events_complaints')) === history.complaints.length,
      60_000,
      'every trip, complaint and feature row in ClickHouse',
    );
    expect(await sql('SELECT uniqExact(event_id) = count(), min(event_time), max(event_time) FROM events_trips')).toBe(
      `1\t${iso(history.trips[0]!.pickup_at).replace('T', ' ').replace('Z', '')}\t${iso(history.trips.at(-1)!.pickup_at).replace('T', ' ').replace('Z', '')}`,
    );
    // raw.trips is keyed by the source's entity field, as sluice produce sends it.
    const kafka = createKafka({ brokers: [status.kafka!], clientId: 'own-topology-test' });
    const keys: [string | undefined, unknown][] = [];
    await readRanges(kafka, 'raw.trips', await resolveRanges(kafka, 'raw.trips'), (_partition, message) => {
      keys.push([message.key?.toString(), (JSON.parse(message.value?.toString() ?? '{}') as { driver_id?: unknown }).driver_id]);
    });
    expect(keys).toHaveLength(history.trips.length);
    expect(keys.filter(([key, driver]) => key !== driver)).toEqual([]);

    // ---- the model, trained on a range of event time, then deployed --------------------------------
    const from = JAN_10 + 8 * HOUR;
    const to = JAN_10 + 16 * HOUR;
    const trained = await sluice(['train', 'complaint', '--promote', '--from', iso(from), '--to', iso(to)], 120_000);
    process.stdout.write(trained.stdout);
    expect(trained.code).toBe(0);
    expect(trained.stdout).toMatch(/^complaint v1 \(tfjs-logistic@\w+\) registered as champion/);
    const [trainRows, testRows] = /training set: (\d+) rows, held-out .*: (\d+) rows/.exec(trained.stdout)!.slice(1).map(Number);
    expect(trainRows! + testRows!).toBe(history.trips.filter((trip) => trip.pickup_at >= from && trip.pickup_at < to).length);
    const shown = JSON.parse((await sluice(['models', 'show', 'complaint'])).stdout) as {
      params: Record<string, string>;
      aliases: string[];
    };
    expect(shown.aliases).toEqual(['champion']);
    expect(shown.params.range).toBe(`event time [${iso(from)}, ${iso(to)})`);

    // ---- live trips are scored by the champion ----------------------------------------------------
    expect((await sluice(['produce', 'trips', 'data/trips-live.csv'])).code).toBe(0);
    await waitUntil(
      async () =>
        Number(await sql("SELECT count() FROM predictions_complaint WHERE deployment = 'CHAMPION' AND model_version = 1")) ===
        live.trips.length,
      60_000,
      'the live trips scored by complaint v1',
    );
    expect(
      await sql(
        'SELECT uniqExact(event_id) = count(), countIf(score >= 0 AND score <= 1) FROM predictions_complaint WHERE model_version = 1',
      ),
    ).toBe(`1\t${live.trips.length}`);

    // ---- online lookups: 'event' TTL clock serves 2001, 'wall' does not unless asked --at ----------
    const driver = live.trips.at(-1)!.driver_id;
    const mine = allTrips.filter((trip) => trip.driver_id === driver);
    const newest = Math.max(...mine.map((trip) => trip.pickup_at));
    const lastHour = mine.filter((trip) => trip.pickup_at > newest - HOUR);
    const hourly = JSON.parse((await sluice(['features', 'get', 'driver_trips_1h', driver])).stdout) as Record<string, unknown>;
    expect(hourly).toMatchObject({ status: 'PRESENT', event_time: newest, as_of: newest, values: { trips: lastHour.length } });
    expect((hourly.values as { fares: number }).fares).toBeCloseTo(
      lastHour.reduce((total, trip) => total + trip.fare, 0),
      6,
    );
    const paceNow = JSON.parse((await sluice(['features', 'get', 'driver_pace_1d', driver])).stdout) as Record<string, unknown>;
    expect(paceNow).toMatchObject({ status: 'OUTSIDE_MAX_AGE', values: null });
    const paceThen = JSON.parse((await sluice(['features', 'get', 'driver_pace_1d', driver, '--at', iso(newest + HOUR)])).stdout) as Record<
      string,
      unknown
    >;
    expect(paceThen).toMatchObject({ status: 'PRESENT', as_of: newest + HOUR });
    const predicted = await fetch(`${status.predict}/complaint`, {
      method: 'POST',
      body: JSON.stringify({ entity_id: driver, event: { distance_km: 4, duration_min: 30 } }),
    });
    expect(predicted.status).toBe(200);
    expect(await predicted.json()).toMatchObject({ model_version: 1 });

    // ---- backfill and check over an afternoon of 2001 -----------------------------------------------
    await waitUntil(
      async () =>
        (await rowsIn('features_driver_trips_1h')) === allTrips.length && (await rowsIn('features_driver_pace_1d')) === allTrips.length,
      60_000,
      'the feature rows of the live trips in ClickHouse',
    );
    const afternoon = allTrips.filter((trip) => trip.pickup_at >= JAN_10 + 12 * HOUR && trip.pickup_at < JAN_10 + 24 * HOUR).length;
    const backfill = await sluice(['backfill', '--from', '2001-01-10T12:00:00Z', '--to', '2001-01-11']);
    process.stdout.write(backfill.stdout);
    expect(backfill.code).toBe(0);
    expect(backfill.stdout).toContain(`: ${afternoon} events → ${afternoon * 2} rows (0 new, ${afternoon * 2} already there)`);
    const registeredBeforeReads = await subjects();
    const checked = await sluice(['features', 'check', '--from', '2001-01-10T12:00:00Z', '--to', '2001-01-11', '--json']);
    expect(checked.code).toBe(0);
    for (const report of JSON.parse(checked.stdout) as { compared: number; mismatchRate: number }[])
      expect(report).toMatchObject({ compared: afternoon, mismatchRate: 0 });

    // ---- read-only commands write nothing: not even the subjects of a topology they are shown -----
    const other = path.join(dir, 'other');
    await fs.mkdir(other);
    await fs.cp(path.join(dir, 'schemas'), path.join(other, 'schemas'), { recursive: true });
    await fs.writeFile(
      path.join(other, 'sluice.config.ts'),
      TOPOLOGY.replace("name: 'complaints',", "name: 'grievances',").replace("name: 'taxi'", "name: 'other'"),
    );
    for (const args of [
      ['models', 'ls'],
      ['models', 'show', 'complaint'],
      ['features', 'ls'],
    ])
      expect((await sluice(['--topology', other, ...args])).code).toBe(0);
    expect(await subjects()).toEqual(registeredBeforeReads);
    expect(registeredBeforeReads).not.toContain('raw.grievances-value');

    // ---- and the repository was not touched ------------------------------------------------------
    expect(repositoryState()).toBe(repositoryBefore);
  });
});
