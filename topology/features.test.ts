import { describe, expect, it } from 'vitest';
import { count, featureView, slidingWindow, sum, type FeatureViewInput } from './features.js';
import { source } from './sources.js';

const trips = source({
  name: 'trips',
  schema: {
    type: 'record',
    name: 'Trip',
    fields: [
      { name: 'trip_id', type: 'string' },
      { name: 'driver_id', type: 'string' },
      { name: 'fare', type: 'double' },
      { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  },
  description: 'trips',
  idField: 'trip_id',
  eventTimeField: 'at',
  entityField: 'driver_id',
});

const definition: FeatureViewInput = {
  name: 'driver_trips_1h',
  source: trips,
  window: slidingWindow('1h'),
  features: { trips: count(), fares: sum('fare') },
  grace: '5m',
  ttl: '2h',
  owner: 'o',
  description: 'd',
};

describe('feature view definitions', () => {
  it('refuse an aggregation kind they do not know (a JavaScript topology is not type-checked)', () => {
    const features = { ...definition.features, typo: { kind: 'median', field: 'fare' } } as unknown as FeatureViewInput['features'];
    expect(() => featureView({ ...definition, features })).toThrow(/driver_trips_1h.typo has an unknown aggregation "median"/);
    expect(() => featureView(definition)).not.toThrow();
  });
});

describe('feature view TTL clock', () => {
  it("defaults to the wall clock, and takes 'event'", () => {
    expect(featureView(definition).ttlClock).toBe('wall');
    expect(featureView({ ...definition, ttlClock: 'event' }).ttlClock).toBe('event');
    expect(() => featureView({ ...definition, ttlClock: 'sundial' as 'wall' })).toThrow(/ttlClock of driver_trips_1h is 'wall' or 'event'/);
  });

  it('leaves the definition hash (and so the registered version) as it was: serving settings are not in it', () => {
    // The hash this definition had before ttlClock existed: views that do not set it keep their version.
    const before = '559f507fb7e5872744b6498b410001215f9565db9b08c5f8adfd683034e23997';
    expect(featureView(definition).hash).toBe(before);
    expect(featureView({ ...definition, ttlClock: 'event' }).hash).toBe(before);
    expect(featureView({ ...definition, window: slidingWindow('2h') }).hash).not.toBe(before);
  });
});
