import { describe, expect, it } from 'vitest';
import { count, featureView, slidingWindow } from '../topology/features.js';
import { source } from '../topology/sources.js';
import type { RunningStage } from '../streams/runtime/index.js';
import type { EntityState } from '../streams/features/engine.js';
import { OnlineStore } from './online.js';

const HOUR = 3_600_000;
/** A trip in 2001: history, far older than any TTL by the wall clock. */
const THEN = Date.UTC(2001, 0, 10, 12);

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
      { name: 'at', type: 'long' },
    ],
  },
});
const viewOn = (name: string, ttlClock?: 'wall' | 'event') =>
  featureView({
    name,
    source: trips,
    window: slidingWindow('1h'),
    features: { trips: count() },
    ttl: '2h',
    ...(ttlClock ? { ttlClock } : {}),
    owner: 't',
    description: 't',
  });
const wall = viewOn('by_wall');
const event = viewOn('by_event', 'event');

/** The entity's state as the features stage keeps it: its newest event, and each view's latest row (an hour older). */
const state: EntityState = {
  newest: THEN + HOUR,
  events: [],
  latest: Object.fromEntries(
    [wall, event].map((view) => [
      view.name,
      {
        view: view.name,
        version: 1,
        entity: 'driver-1',
        eventId: 'trips:1',
        eventTime: THEN,
        sequence: 0,
        windowStart: THEN - HOUR,
        windowEnd: THEN,
        values: { trips: 3 },
      },
    ]),
  ),
};
const stage = {
  query: (_store: string, key: string) => Promise.resolve({ owned: true, partition: 0, value: key === 'driver-1' ? state : undefined }),
} as unknown as RunningStage;
const online = new OnlineStore(stage, [wall, event], '');

describe('online lookups: the clock a TTL is judged against', () => {
  it("judges 'wall' views against now: history is OUTSIDE_MAX_AGE", async () => {
    const found = await online.get('by_wall', 'driver-1');
    expect(found).toMatchObject({ status: 'OUTSIDE_MAX_AGE', values: null, event_time: THEN });
    expect(found.as_of).toBeGreaterThan(Date.UTC(2020, 0, 1));
  });

  it("judges 'event' views against the entity's newest event time: history is served", async () => {
    expect(await online.get('by_event', 'driver-1')).toMatchObject({ status: 'PRESENT', values: { trips: 3 }, as_of: THEN + HOUR });
  });

  it('judges both against `at` when a lookup names it', async () => {
    for (const view of ['by_wall', 'by_event']) {
      expect(await online.get(view, 'driver-1', THEN + HOUR)).toMatchObject({ status: 'PRESENT', as_of: THEN + HOUR });
      expect(await online.get(view, 'driver-1', THEN + 3 * HOUR)).toMatchObject({ status: 'OUTSIDE_MAX_AGE', values: null });
    }
    const [many] = await online.getMany(['by_wall', 'by_event'], ['driver-1'], THEN);
    expect(Object.values(many?.features ?? {}).map((value) => value.status)).toEqual(['PRESENT', 'PRESENT']);
  });

  it('finds nothing for an unknown entity, whatever the clock', async () => {
    expect(await online.get('by_event', 'driver-2')).toMatchObject({ status: 'NOT_FOUND', values: null });
  });
});
