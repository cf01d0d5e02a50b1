import { describe, expect, it } from 'vitest';
import { uniformRandom } from '../common/random.js';
import { count, featureView, max, sessionWindow, slidingWindow, sum, tumblingWindow } from '../topology/features.js';
import { source } from '../topology/sources.js';
import { SourceFeatures, type FeatureRow, type SourceEvent } from '../streams/features/engine.js';
import { RangeReplay, replayedEntity } from './replay.js';
import { rangePlan } from './range.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** 2001-01-10: history is old, its record times would all be "today". */
const JAN_10 = Date.UTC(2001, 0, 10);

const trips = source({
  name: 'trips',
  idField: 'trip_id',
  eventTimeField: 'at',
  entityField: 'driver_id',
  description: 'test',
  schema: {
    type: 'record',
    name: 'Trip',
    fields: [
      { name: 'trip_id', type: 'string' },
      { name: 'driver_id', type: 'string' },
      { name: 'fare', type: 'double' },
      { name: 'at', type: 'long' },
    ],
  },
});

const views = [
  featureView({
    name: 'driver_1h',
    source: trips,
    window: slidingWindow('1h'),
    features: { trips: count(), fares: sum('fare') },
    grace: '10m',
    owner: 't',
    description: 't',
  }),
  featureView({
    name: 'driver_day',
    source: trips,
    window: tumblingWindow('1d'),
    features: { trips: count(), top: max('fare') },
    owner: 't',
    description: 't',
  }),
  featureView({
    name: 'driver_shift',
    source: trips,
    window: sessionWindow('30m', '12h'),
    features: { trips: count() },
    grace: '5m',
    owner: 't',
    description: 't',
  }),
];
const versions = new Map(views.map((view) => [view.name, 1]));

/** Three days of trips of a few drivers in partition order, a few arriving late (some beyond every grace). */
function history(seed: number): SourceEvent[] {
  const random = uniformRandom(seed);
  const events: SourceEvent[] = [];
  let clock = JAN_10 - 2 * DAY;
  for (let index = 0; index < 1_500; index++) {
    clock += Math.floor(random() * 6 * MIN);
    const late = random() < 0.05 ? Math.floor(random() * 3 * HOUR) : 0;
    const driver = `driver-${Math.floor(random() * 6)}`;
    events.push({
      entity: driver,
      eventId: `trips:${index}`,
      eventTime: clock - late,
      sequence: index,
      value: { trip_id: String(index), driver_id: driver, fare: Math.round(random() * 5_000) / 100, at: clock - late },
    });
  }
  return events;
}

function replay(events: readonly SourceEvent[], selected: (event: SourceEvent) => boolean, fromEventTime?: number): FeatureRow[] {
  const replayer = new RangeReplay(new SourceFeatures(trips, views, versions), fromEventTime);
  return events.flatMap((event) => replayer.apply(event, selected(event)).rows);
}

describe('replay of an event-time range', () => {
  const events = history(3);
  const from = JAN_10;
  const to = JAN_10 + DAY;
  const inRange = (event: SourceEvent): boolean => event.eventTime >= from && event.eventTime < to;

  it('emits, for the events of the range, exactly the rows a replay of everything gives them (state warmed from before the range)', () => {
    const everything = replay(events, () => true);
    const ranged = replay(events, inRange, from);
    const expected = everything.filter((row) => row.eventTime >= from && row.eventTime < to);
    expect(ranged.length).toBeGreaterThan(500);
    expect(ranged).toEqual(expected);
    // Late events of the range emit no row for the views they are late for, as live.
    expect(ranged.length).toBeLessThan(events.filter(inRange).length * views.length);
  });

  it('would differ without the warm-up: the first rows of the range need the history before it', () => {
    const firstInRange = events.findIndex(inRange);
    const cold = replay(events.slice(firstInRange), inRange, from);
    const warm = replay(events, inRange, from);
    expect(cold.length).toBe(warm.length);
    expect(cold).not.toEqual(warm);
  });

  it('skips events too old to matter without changing a row', () => {
    const replayer = new RangeReplay(new SourceFeatures(trips, views, versions), from);
    const skipped = events.filter((event) => !inRange(event) && event.eventTime < from - replayer.features.retentionMs);
    expect(skipped.length).toBeGreaterThan(100);
    const withoutThem = replay(
      events.filter((event) => !skipped.includes(event)),
      inRange,
    );
    expect(replay(events, inRange, from)).toEqual(withoutThem);
  });
});

describe('range plans', () => {
  const whole = [
    { partition: 0, from: 0n, to: 100n },
    { partition: 1, from: 5n, to: 50n },
  ];

  it('read every partition from its start; select by event time, [from, to)', () => {
    const plan = rangePlan(whole, undefined, { from: 1_000, to: 2_000 });
    expect(plan.read).toEqual(whole);
    expect([999, 1_000, 1_999, 2_000].map((time) => plan.selects(0, 10n, time))).toEqual([false, true, true, false]);
    expect(plan.fromEventTime).toBe(1_000);
  });

  it('with record-time or offset bounds, read up to their end and select only the offsets inside', () => {
    const plan = rangePlan(
      whole,
      [
        { partition: 0, from: 40n, to: 60n },
        { partition: 1, from: 50n, to: 50n },
      ],
      undefined,
    );
    expect(plan.read).toEqual([
      { partition: 0, from: 0n, to: 60n },
      { partition: 1, from: 5n, to: 50n },
    ]);
    expect([39n, 40n, 59n, 60n].map((offset) => plan.selects(0, offset, 0))).toEqual([false, true, true, false]);
    expect(plan.selects(1, 49n, 0)).toBe(false);
    expect(plan.fromEventTime).toBe(Number.NEGATIVE_INFINITY);
  });
});

describe('replayedEntity', () => {
  it('keeps the events the live stage computes rows for and skips the ones it dead-letters', () => {
    expect(replayedEntity({ driver_id: 'd-1' }, 'driver_id')).toBe('d-1');
    expect(replayedEntity({ driver_id: 'a\u0000b' }, 'driver_id')).toBe('a\u0000b');
    expect(replayedEntity({ driver_id: '\u0000d-1\u00003' }, 'driver_id')).toBeUndefined();
    expect(replayedEntity({ driver_id: '' }, 'driver_id')).toBeUndefined();
    expect(replayedEntity({ driver_id: 7 }, 'driver_id')).toBeUndefined();
    expect(replayedEntity({}, 'driver_id')).toBeUndefined();
  });
});
