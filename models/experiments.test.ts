import { describe, expect, it } from 'vitest';
import { compareRuns, ExperimentError, findRun, type ExperimentRun } from './experiments.js';

function run(id: string, params: Record<string, string>, metrics: Record<string, number>): ExperimentRun {
  return {
    experiment: 'fraud',
    run_id: id,
    status: 'FINISHED',
    params,
    metrics,
    dataset: null,
    code_commit: null,
    environment: {},
    resources: {},
    started_at: 0,
    ended_at: null,
    model_version: null,
    error: null,
    trainer: 'tfjs-mlp',
    seed: 42,
    trigger: null,
    epochs: [],
    machine: null,
    durations: {},
  };
}

describe('compareRuns', () => {
  const runs = [
    run('a1', { lr: '0.01', hidden: '16' }, { auc: 0.9, log_loss: 0.3, rows: 100, ece: 0.02 }),
    run('b2', { lr: '0.05', hidden: '16' }, { auc: 0.95, log_loss: 0.4, rows: 200, ece: 0.01 }),
  ];

  it('lists only the params that differ, the others as the same', () => {
    const comparison = compareRuns(runs);
    expect(comparison.params).toEqual([{ name: 'lr', values: ['0.01', '0.05'] }]);
    expect(comparison.sameParams).toContain('hidden');
    expect(comparison.sameParams).toContain('trainer');
    expect(compareRuns(runs, { all: true }).params.map((row) => row.name)).toContain('hidden');
  });

  it('marks the best run by each metric direction, and none for counts', () => {
    const best = Object.fromEntries(compareRuns(runs).metrics.map((row) => [row.name, row.best]));
    expect(best).toEqual({ auc: 1, log_loss: 0, ece: 1, rows: null });
  });

  it('marks no best when the runs are equal', () => {
    const same = [run('a', {}, { auc: 0.9 }), run('b', {}, { auc: 0.9 })];
    expect(compareRuns(same).metrics[0]?.best).toBeNull();
  });
});

describe('findRun', () => {
  const runs = [run('abc-1', {}, {}), run('abd-2', {}, {})];

  it('finds a run by its id or a unique prefix', () => {
    expect(findRun(runs, 'abc-1').run_id).toBe('abc-1');
    expect(findRun(runs, 'abd').run_id).toBe('abd-2');
  });

  it('says why when no run or several runs match', () => {
    expect(() => findRun(runs, 'zzz')).toThrow(ExperimentError);
    expect(() => findRun(runs, 'zzz')).toThrow(/no experiment run zzz/);
    expect(() => findRun(runs, 'ab')).toThrow(/matches 2 runs/);
  });
});
