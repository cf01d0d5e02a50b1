import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../../common/metrics.js';
import { LoadedModel, type ModelWatcher, type Route } from '../../models/deployment.js';
import { OnnxScorer, toOnnx } from '../../models/network.js';
import type { ModelMetadata, ModelVersion } from '../../models/registry.js';
import { entityBucket } from '../../models/rollout.js';
import { modelDefinition, source, type ModelDefinition } from '../../topology/index.js';
import { EVENT_FEATURES, type EventFeatures, type FeatureRow } from '../../topology/features.js';
import type { StreamRecord } from '../runtime/index.js';
import { eventFeatures, LATE, predict, predictWithShadow, type FeatureSource } from './stage.js';

const payments = source({
  name: 'payments',
  schema: {
    type: 'record',
    name: 'Payment',
    fields: [
      { name: 'payment_id', type: 'string' },
      { name: 'card_id', type: 'string' },
      { name: 'amount', type: 'double' },
      { name: 'tip', type: 'double' },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  },
  idField: 'payment_id',
  eventTimeField: 'timestamp',
  entityField: 'card_id',
  description: 'test payments',
});

/** Today's definition lists tip before amount; version 1 was trained on [amount, tip]. */
const definition: ModelDefinition = modelDefinition({
  name: 'pay',
  description: 'test',
  owner: 'tests',
  source: payments,
  fields: ['tip', 'amount'],
  features: [],
  label: { source: payments, joinField: 'payment_id', window: '1h' },
  trainer: 'logistic',
  threshold: 0.5,
});

/** sigmoid(first input): the score says which input came first. */
async function versionOn(version: number, inputs: string[]): Promise<LoadedModel> {
  const network = {
    features: inputs,
    mean: Float32Array.from([0, 0]),
    std: Float32Array.from([1, 1]),
    layers: [{ inputs: 2, outputs: 1, weights: Float32Array.from([1, 0]), bias: Float32Array.from([0]), activation: 'sigmoid' as const }],
  };
  return new LoadedModel(
    { name: 'pay', version, aliases: [] } as unknown as ModelVersion,
    { name: 'pay', inputs, fill: [0, 0] } as unknown as ModelMetadata,
    await OnnxScorer.load(toOnnx(network, 'pay'), 2),
    64,
    0,
  );
}

const noFeatures: FeatureSource = { valuesAt: () => Promise.resolve(null) };
const sigmoid = (value: number): number => 1 / (1 + Math.exp(-value));

function watching(
  champion: LoadedModel,
  route: (entity: string) => Route = () => ({ model: champion, role: 'CHAMPION', deploymentId: null }),
  shadow?: LoadedModel,
) {
  const remembered: unknown[] = [];
  return {
    current: () => champion,
    previous: () => undefined,
    candidate: () => shadow,
    loadFailure: () => undefined,
    shadow: () => (shadow ? { model: shadow, deploymentId: 's1' } : undefined),
    remember: (values: unknown) => remembered.push(values),
    remembered,
    route,
  } as unknown as ModelWatcher & { remembered: unknown[] };
}

describe('predict with per-version inputs and routes', () => {
  let v1: LoadedModel;
  let v2: LoadedModel;
  beforeAll(async () => {
    v1 = await versionOn(1, ['amount', 'tip']);
    v2 = await versionOn(2, ['tip', 'amount']);
  });
  afterAll(async () => {
    await v1.close();
    await v2.close();
  });
  const event = (entity: string) => ({ eventId: `e-${entity}`, entity, eventTime: 1_000, value: { amount: 3, tip: -2 } });

  it('builds the row of an old version from its own recorded inputs, not from the current definition', async () => {
    const options = { model: definition, watcher: watching(v1), metrics: createMetricsRegistry(), features: noFeatures };
    const prediction = await predict(options, event('c1'), Date.now());
    expect(prediction.model_version).toBe(1);
    expect(prediction.score).toBeCloseTo(sigmoid(3), 5);
    const current = await predict({ ...options, watcher: watching(v2) }, event('c1'), Date.now());
    expect(current.score).toBeCloseTo(sigmoid(-2), 5);
  });

  it('records the role and deployment id of the route, and falls back from a canary to the champion', async () => {
    const options = {
      model: definition,
      metrics: createMetricsRegistry(),
      features: noFeatures,
      watcher: watching(v1, (entity) =>
        entity === 'canary' ? { model: v2, role: 'CANARY', deploymentId: 'd1' } : { model: v1, role: 'CHAMPION', deploymentId: 'd1' },
      ),
    };
    const canary = await predict(options, event('canary'), Date.now());
    expect([canary.model_version, canary.deployment, canary.deployment_id]).toEqual([2, 'CANARY', 'd1']);
    const champion = await predict(options, event('other'), Date.now());
    expect([champion.model_version, champion.deployment, champion.deployment_id]).toEqual([1, 'CHAMPION', 'd1']);
    const broken = await versionOn(3, ['amount', 'tip']);
    await broken.close();
    const failing = await predict(
      { ...options, watcher: watching(v1, () => ({ model: broken, role: 'CANARY', deploymentId: 'd1' })) },
      event('x'),
      Date.now(),
    );
    expect([failing.model_version, failing.deployment, failing.fallback_reason?.split(':')[0]]).toEqual([1, 'FALLBACK', 'model_error']);
  });
});

describe('predict with a shadow version', () => {
  it('scores the shadow on its own inputs beside the champion, which alone decides; a failing shadow is its own fallback', async () => {
    const v1 = await versionOn(1, ['amount', 'tip']);
    const v2 = await versionOn(2, ['tip', 'amount']);
    const watcher = watching(v1, undefined, v2);
    const options = { model: definition, watcher, metrics: createMetricsRegistry(), features: noFeatures };
    const event = { eventId: 'e1', entity: 'c1', eventTime: 1_000, value: { amount: 3, tip: -2 } };
    const both = await predictWithShadow(options, event, Date.now(), true);
    expect([both.prediction.model_version, both.prediction.deployment, both.prediction.decision]).toEqual([1, 'CHAMPION', true]);
    expect(both.prediction.score).toBeCloseTo(sigmoid(3), 5);
    expect([both.shadow?.model_version, both.shadow?.deployment, both.shadow?.deployment_id, both.shadow?.decision]).toEqual([
      2,
      'SHADOW',
      's1',
      false,
    ]);
    expect(both.shadow?.score).toBeCloseTo(sigmoid(-2), 5);
    expect(both.shadow?.event_id).toBe('e1');
    expect(watcher.remembered).toHaveLength(1);
    // Without asking for the shadow (the HTTP /predict route), none is scored.
    expect((await predictWithShadow(options, event, Date.now(), false)).shadow).toBeUndefined();
    await v2.close();
    const failing = await predictWithShadow(options, event, Date.now(), true);
    expect(failing.prediction.deployment).toBe('CHAMPION');
    expect([failing.shadow?.deployment, failing.shadow?.fallback_reason?.split(':')[0]]).toEqual(['SHADOW', 'model_error']);
    await v1.close();
  });
});

describe('entityBucket', () => {
  it('is stable per deployment and entity, and splits 20,000 entities within 1 point of the share', () => {
    expect(entityBucket('d1', 'card-7')).toBe(entityBucket('d1', 'card-7'));
    expect(entityBucket('d1', 'card-7')).not.toBe(entityBucket('d2', 'card-7'));
    for (const share of [0.05, 0.25, 0.5]) {
      let inside = 0;
      for (let index = 0; index < 20_000; index += 1) if (entityBucket('d1', `card-${index}`) < share) inside += 1;
      expect(Math.abs(inside / 20_000 - share)).toBeLessThan(0.01);
    }
  });
});

describe('eventFeatures (the rows the features stage left on the event)', () => {
  const rowOf = (view: string, amount: number): FeatureRow => ({
    view,
    version: 1,
    entity: 'card-1',
    eventId: 'p-1',
    eventTime: 1_000,
    sequence: 3,
    windowStart: 0,
    windowEnd: 1_000,
    values: { amount_sum: amount },
  });
  const recordWith = (computed?: EventFeatures): StreamRecord<unknown> => {
    const scratch = new Map<string, unknown>();
    if (computed) scratch.set(EVENT_FEATURES, computed);
    const raw = { topic: 'events.payments', partition: 0, offset: '0', key: null, value: null, headers: {}, timestamp: 1_000 };
    return { ...raw, value: {}, eventTime: 1_000, sequence: 3, scratch, raw };
  };

  it("reads each view's own row, LATE for a late view, and null for a view without a row or an event without rows", async () => {
    const source = eventFeatures(recordWith({ rows: [rowOf('card_1h', 10), rowOf('card_1d', 20)], late: new Set(['card_7d']) }));
    expect(await source.valuesAt('card_1h', 'card-1', 'p-1', 1_000)).toEqual({ amount_sum: 10 });
    expect(await source.valuesAt('card_1d', 'card-1', 'p-1', 1_000)).toEqual({ amount_sum: 20 });
    expect(await source.valuesAt('card_7d', 'card-1', 'p-1', 1_000)).toBe(LATE);
    expect(await source.valuesAt('merchant_1h', 'card-1', 'p-1', 1_000)).toBeNull();
    expect(await eventFeatures(recordWith()).valuesAt('card_1h', 'card-1', 'p-1', 1_000)).toBeNull();
  });
});
