import { describe, expect, it } from 'vitest';
import { inputProblems, versionProblems, type CurrentInputs } from './guards.js';
import type { ModelMetadata, ModelVersion } from './registry.js';

const current: CurrentInputs = {
  fields: ['amount', 'hour'],
  views: new Map([
    ['card_1h', { features: ['count', 'sum'], version: 2 }],
    ['user_1d', { features: ['mean'] }],
  ]),
};

describe('inputProblems', () => {
  it('accepts inputs that exist now in any order, with matching view versions', () => {
    expect(inputProblems(['card_1h.sum', 'amount', 'card_1h.count', 'user_1d.mean'], { card_1h: 2, user_1d: 7 }, current)).toEqual([]);
  });

  it('accepts no inputs', () => {
    expect(inputProblems([], {}, current)).toEqual([]);
  });

  it('names a field, a view and a feature that are gone', () => {
    expect(inputProblems(['merchant', 'gone_1h.count', 'card_1h.max'], {}, current)).toEqual([
      'input merchant is not a field of the scored events',
      'input gone_1h.count: there is no feature view gone_1h now',
      'input card_1h.max: view card_1h has no feature max now',
    ]);
  });

  it('refuses a view whose definition version changed since training', () => {
    expect(inputProblems(['card_1h.count'], { card_1h: 1 }, current)).toEqual([
      'view card_1h was at definition version 1 when the model was trained and is at version 2 now',
    ]);
  });
});

describe('versionProblems', () => {
  const version = { dataset: { ranges: [], feature_versions: { card_1h: 2 } } } as unknown as ModelVersion;
  const metadata = (categorical: ModelMetadata['categorical']): ModelMetadata => ({
    name: 'm',
    inputs: ['amount', 'card_1h.count', 'channel=web', 'channel=pos'],
    fill: [],
    threshold: 0.5,
    trainer: 't',
    metrics: {},
    baseline: {},
    ...(categorical ? { categorical } : {}),
  });

  it('checks one-hot columns as the categorical field they come from', () => {
    expect(
      versionProblems(version, metadata([{ field: 'channel', categories: ['web', 'pos'] }]), { ...current, fields: ['amount', 'channel'] }),
    ).toEqual([]);
    expect(versionProblems(version, metadata([{ field: 'channel', categories: ['web', 'pos'] }]), current)).toEqual([
      'input channel is not a field of the scored events',
    ]);
  });
});
