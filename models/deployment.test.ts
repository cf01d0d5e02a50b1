import { describe, expect, it } from 'vitest';
import { isWatcherGroup, LoadedModel, watcherGroup } from './deployment.js';
import { OnnxScorer, toOnnx } from './network.js';
import type { ModelMetadata, ModelVersion } from './registry.js';

describe('watcher groups: how a blue-green switch finds the live instances of one model of one stack', () => {
  it("recognises the model's watchers under the stack's prefix only", () => {
    const group = watcherGroup('staging.', 'fraud');
    expect(group).toMatch(/^staging\.sluice-model-watch:fraud:[0-9a-f-]{36}$/);
    expect(isWatcherGroup(group, 'staging.', 'fraud')).toBe(true);
    expect(isWatcherGroup(group, '', 'fraud')).toBe(false);
    expect(isWatcherGroup(group, 'staging.', 'fraud2')).toBe(false);
    expect(isWatcherGroup(watcherGroup('staging.', 'fraud:x'), 'staging.', 'fraud')).toBe(false);
    expect(isWatcherGroup('staging.sluice-model-watch:fraud:not-an-instance', 'staging.', 'fraud')).toBe(false);
  });
});

describe('a loaded version retired while rows are queued', () => {
  it('scores what it was given, releases its session once, and refuses rows after that', async () => {
    const network = {
      features: ['a', 'b'],
      mean: Float32Array.from([0, 0]),
      std: Float32Array.from([1, 1]),
      layers: [{ inputs: 2, outputs: 1, weights: Float32Array.from([1, 0]), bias: Float32Array.from([0]), activation: 'sigmoid' as const }],
    };
    const model = new LoadedModel(
      { name: 'pay', version: 3, aliases: [] } as unknown as ModelVersion,
      { name: 'pay', inputs: ['a', 'b'], fill: [0, 0] } as unknown as ModelMetadata,
      await OnnxScorer.load(toOnnx(network, 'pay'), 2),
      64,
      50,
    );
    const queued = [model.score([0, 1]), model.score([2, 0])];
    const closing = model.close();
    const [first, second] = await Promise.all(queued);
    expect(first).toBeCloseTo(0.5, 5);
    expect(second).toBeCloseTo(1 / (1 + Math.exp(-2)), 5);
    await closing;
    await expect(model.close()).resolves.toBeUndefined();
    await expect(model.score([1, 1])).rejects.toThrow(/version 3 of pay was retired/);
  });
});
