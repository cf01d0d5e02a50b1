import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../common/metrics.js';
import { AvroSerde } from '../../schemas/serde.js';
import { count, distinctCount, featureView, slidingWindow } from '../../topology/features.js';
import { payments } from '../../topology/fixtures/payments.js';
import { keptBytes } from './entity-append.js';
import { ENTITY_STORE, featuresStage } from './stage.js';

describe('featuresStage', () => {
  it("declares its entity store with the kept windows' bytes counted beside each head (heldBeside)", () => {
    const view = featureView({
      name: 'merchants',
      source: payments,
      window: slidingWindow('1h'),
      features: { n: count(), merchants: distinctCount('merchant') },
      owner: 'test',
      description: 'test',
    });
    const stage = featuresStage({
      views: [view],
      versions: new Map(),
      topicPrefix: '',
      // Never asked for a schema here: no registry is contacted.
      serdeFor: (reader) => new AvroSerde('http://127.0.0.1:9', reader),
      schemaIds: { merchants: 1 },
      metrics: createMetricsRegistry(false),
    });
    const [store] = stage.stores ?? [];
    expect(store?.name).toBe(ENTITY_STORE);
    expect(store?.kind === 'key-value' && store.heldBeside).toBe(keptBytes);
  });
});
