import { describe, expect, it } from 'vitest';
import { defaultSpace, gridTrials, parseParam, randomTrials, SearchSpaceError, type TrialParams } from './search.js';

const base: TrialParams = { kind: 'mlp', learningRate: 0.01, batchSize: 128, hidden: 16, l2: 0, epochs: 15, seed: 42 };

describe('search spaces', () => {
  it('parses choices, ranges with their scale, integer ranges and grid points', () => {
    expect(parseParam('hidden=8,16,32,64')).toEqual({ name: 'hidden', type: 'choice', values: [8, 16, 32, 64] });
    expect(parseParam('lr=1e-4..1e-1:log')).toEqual({
      name: 'learningRate',
      type: 'range',
      low: 1e-4,
      high: 0.1,
      scale: 'log',
      integer: false,
      points: 3,
    });
    expect(parseParam('batch=32..256:log:4')).toMatchObject({ name: 'batchSize', integer: true, scale: 'log', points: 4 });
    expect(parseParam('l2=0..1e-3')).toMatchObject({ name: 'l2', scale: 'linear', integer: false });
    expect(parseParam('kind=logistic,mlp')).toEqual({ name: 'kind', type: 'choice', values: ['logistic', 'mlp'] });
  });

  it.each([
    ['lr', /name=values/],
    ['depth=3', /unknown; tunable/],
    ['lr=0..1e-1:log', /log range needs a start > 0/],
    ['lr=1e-1..1e-4', /end must exceed its start/],
    ['hidden=8,abc', /"abc" is not a number/],
    ['hidden=2.5,4', /whole numbers/],
    ['lr=1e-3..1e-1:cubic', /unknown modifier/],
    ['kind=svm', /logistic or mlp/],
    ['kind=a..b', /a choice/],
    ['l2=-1,0', /values ≥ 0/],
  ])('refuses %s', (text, message) => {
    expect(() => parseParam(text)).toThrow(SearchSpaceError);
    expect(() => parseParam(text)).toThrow(message);
  });

  it('random search: the baseline first, then distinct seeded draws inside the space, the same for the same seed', () => {
    const space = ['lr=1e-4..1e-1:log', 'hidden=8,16,32,64', 'batch=32..512:int'].map(parseParam);
    const trials = randomTrials(base, space, 32, 7);
    expect(trials).toHaveLength(32);
    expect(trials[0]).toEqual(base);
    expect(randomTrials(base, space, 32, 7)).toEqual(trials);
    expect(randomTrials(base, space, 32, 8)).not.toEqual(trials);
    expect(new Set(trials.map((trial) => JSON.stringify(trial))).size).toBe(32);
    for (const trial of trials.slice(1)) {
      expect(trial.learningRate).toBeGreaterThanOrEqual(1e-4);
      expect(trial.learningRate).toBeLessThanOrEqual(0.1);
      expect([8, 16, 32, 64]).toContain(trial.hidden);
      expect(Number.isInteger(trial.batchSize) && trial.batchSize >= 32 && trial.batchSize <= 512).toBe(true);
      expect(trial.epochs).toBe(15);
      expect(trial.seed).toBe(42);
    }
    // log-uniform: about as many draws below 1e-2.5 as above
    const low = trials.slice(1).filter((trial) => trial.learningRate < 10 ** -2.5).length;
    expect(low).toBeGreaterThan(5);
    expect(low).toBeLessThan(26);
  });

  it('grid search: the baseline, then every combination once', () => {
    const trials = gridTrials(base, ['lr=1e-3..1e-1:log', 'hidden=16,32'].map(parseParam));
    expect(trials[0]).toEqual(base);
    expect(trials.slice(1).map((trial) => [trial.learningRate, trial.hidden])).toEqual([
      [0.001, 16],
      [0.001, 32],
      [0.01, 32],
      [0.1, 16],
      [0.1, 32],
    ]); // (0.01, 16) is the baseline
  });

  it('has a default space', () => {
    expect(defaultSpace().map((spec) => spec.name)).toEqual(['learningRate', 'hidden', 'l2']);
  });
});
