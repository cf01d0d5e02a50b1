import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetricsRegistry } from '../common/metrics.js';
import { LoadedModel, type ModelWatcher } from '../models/deployment.js';
import { NonFiniteScoreError } from '../models/errors.js';
import { OnnxScorer, toOnnx, type ScoringNetwork } from '../models/network.js';
import type { ModelMetadata, ModelVersion } from '../models/registry.js';
import { modelDefinition, source, type ModelDefinition } from '../topology/index.js';
import { serveOps, type OpsServer } from './ops-server.js';
import { predictRoutes } from './predict-route.js';

const payments = source({
  name: 'payments',
  schema: {
    type: 'record',
    name: 'Payment',
    fields: [
      { name: 'payment_id', type: 'string' },
      { name: 'card_id', type: 'string' },
      { name: 'amount', type: { type: 'bytes', logicalType: 'decimal', precision: 12, scale: 2 } },
      { name: 'tip', type: ['null', 'double'], default: null },
      { name: 'channel', type: { type: 'enum', name: 'Channel', symbols: ['ONLINE', 'ATM'] } },
      { name: 'timestamp', type: { type: 'long', logicalType: 'timestamp-millis' } },
    ],
  },
  idField: 'payment_id',
  eventTimeField: 'timestamp',
  entityField: 'card_id',
  description: 'test payments',
});

const definition = (name: string): ModelDefinition =>
  modelDefinition({
    name,
    description: 'test',
    owner: 'tests',
    source: payments,
    fields: ['amount', 'tip'],
    features: [],
    label: { source: payments, joinField: 'payment_id', window: '1h' },
    trainer: 'logistic',
    threshold: 0.5,
    fallbackScore: 0.25,
  });

/** A logistic network over two inputs; a NaN bias makes every score NaN (a broken artifact). */
function network(bias: number): ScoringNetwork {
  return {
    features: ['amount', 'tip'],
    mean: Float32Array.from([0, 0]),
    std: Float32Array.from([1, 1]),
    layers: [{ inputs: 2, outputs: 1, weights: Float32Array.from([0.001, 0.001]), bias: Float32Array.from([bias]), activation: 'sigmoid' }],
  };
}

async function loaded(name: string, bias: number): Promise<LoadedModel> {
  const version = { name, version: 1, aliases: ['champion'] } as unknown as ModelVersion;
  const metadata = { name, inputs: ['amount', 'tip'], fill: [0, 0] } as unknown as ModelMetadata;
  return new LoadedModel(version, metadata, await OnnxScorer.load(toOnnx(network(bias), name), 2), 64, 0);
}

const watching = (model: LoadedModel): ModelWatcher =>
  ({
    current: () => model,
    previous: () => undefined,
    candidate: () => undefined,
    loadFailure: () => undefined,
    shadow: () => undefined,
    remember: () => undefined,
    route: () => ({ model, role: 'CHAMPION', deploymentId: null }),
  }) as unknown as ModelWatcher;

describe('POST /predict/<model>', () => {
  let good: LoadedModel;
  let broken: LoadedModel;
  let server: OpsServer;

  beforeAll(async () => {
    good = await loaded('good', 0);
    broken = await loaded('broken', Number.NaN);
    const models = new Map([
      ['good', { model: definition('good'), watcher: watching(good) }],
      ['broken', { model: definition('broken'), watcher: watching(broken) }],
    ]);
    const metrics = createMetricsRegistry(false);
    const health = { live: () => true, ready: () => true, detail: () => ({}) };
    server = await serveOps(metrics, health, '127.0.0.1', 0, [predictRoutes(models, () => undefined, metrics)]);
  });

  afterAll(async () => {
    await server.close();
    await good.close();
    await broken.close();
  });

  const post = async (model: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`${server.url}/predict/${model}`, { method: 'POST', body });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  it('scores a well-typed event with the champion', async () => {
    const { status, json } = await post('good', JSON.stringify({ entity_id: 'card-1', event: { amount: 950, tip: null, channel: 'ATM' } }));
    expect(status).toBe(200);
    expect(json).toMatchObject({ deployment: 'CHAMPION', fallback_reason: null, model_version: 1 });
    expect(Number.isFinite(json.score)).toBe(true);
  });

  it.each([
    [
      'a string for a decimal',
      '{"entity_id":"card-1","event":{"amount":"950"}}',
      /event\.amount: "950" is not a number \(decimal\(12, 2\)\)/,
    ],
    [
      'a number beyond the decimal precision',
      '{"entity_id":"card-1","event":{"amount":1e39}}',
      /event\.amount: 1e\+39 is not a number \(decimal/,
    ],
    [
      'a number JSON reads as Infinity',
      '{"entity_id":"card-1","event":{"amount":1e400}}',
      /event\.amount: Infinity is not a finite number/,
    ],
    ['Infinity in a double', '{"entity_id":"card-1","event":{"amount":1,"tip":-1e999}}', /event\.tip: -Infinity is not a finite number/],
    [
      'a symbol the enum lacks',
      '{"entity_id":"card-1","event":{"amount":1,"channel":"PHONE"}}',
      /event\.channel: "PHONE" is not one of ONLINE, ATM/,
    ],
    ['a field the schema lacks', '{"entity_id":"card-1","event":{"amount":1,"amout":2}}', /event\.amout: not a field of source payments/],
    ['a missing model input', '{"entity_id":"card-1","event":{"tip":2}}', /event\.amount: missing; model good uses it/],
    ['a non-integer event time', '{"entity_id":"card-1","event":{"amount":1},"event_time":1.5}', /event_time/],
    ['an unknown top-level key', '{"entity_id":"card-1","event":{"amount":1},"evnt":{}}', /evnt/],
  ])('answers 400 naming the field for %s', async (_case, body, message) => {
    const { status, json } = await post('good', body);
    expect(status).toBe(400);
    expect(json.error).toMatch(message);
  });

  it('never serves a non-finite score as a CHAMPION prediction', async () => {
    const { status, json } = await post('broken', JSON.stringify({ entity_id: 'card-1', event: { amount: 10 } }));
    expect(status).toBe(200);
    expect(json).toMatchObject({ deployment: 'FALLBACK', score: 0.25, decision: false });
    expect(json.fallback_reason).toMatch(/non_finite_score: .*scored NaN, not a finite number/);
  });

  it('answers 400, not 500, for malformed percent-encoding in the path', async () => {
    const response = await fetch(`${server.url}/predict/%E0%A4%A`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: 'malformed percent-encoding in the model name' });
  });
});

describe('LoadedModel', () => {
  it('rejects a NaN score with NonFiniteScoreError and resolves finite ones', async () => {
    const broken = await loaded('broken', Number.NaN);
    const good = await loaded('good', 0);
    try {
      await expect(broken.score([1, 2])).rejects.toBeInstanceOf(NonFiniteScoreError);
      await expect(good.score([1, 2])).resolves.toBeCloseTo(0.5, 2);
    } finally {
      await broken.close();
      await good.close();
    }
  });
});
