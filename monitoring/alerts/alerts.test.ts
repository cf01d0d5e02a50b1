import { describe, expect, it } from 'vitest';
import {
  datasetDriftAlert,
  fallbackAlert,
  featureDriftAlert,
  performanceAlert,
  qualityAlert,
  consumerLagAlert,
  retrain,
} from '../../topology/monitoring.js';
import type { DriftRecord } from '../drift/records.js';
import type { PerformanceRecord } from '../performance/merger.js';
import { MemoryStore } from '../state.js';
import { AlertEvaluator, type AlertRecord } from './alerts.js';

const HOUR = 3_600_000;

/** A dataset record of a tumbling window ending at `hour`. */
function dataset(hour: number, share: number | null, extra: Partial<DriftRecord> = {}): DriftRecord {
  return {
    model_name: 'fraud',
    model_version: 1,
    feature: '__dataset__',
    test: 'DATASET',
    statistic: share ?? 0,
    p_value: null,
    threshold: 0.5,
    drifted: (share ?? 0) >= 0.5,
    sample_size: 500,
    baseline_size: 0,
    window_start: (hour - 1) * HOUR,
    window_end: hour * HOUR,
    window_kind: 'TUMBLING',
    last_n_round: null,
    feature_kind: 'dataset',
    verdict: share === null ? 'INSUFFICIENT' : share >= 0.5 ? 'DRIFT' : 'NO_DRIFT',
    reason: null,
    min_sample: 100,
    alpha: 0.05,
    correction: 'benjamini-hochberg',
    tests_in_family: 4,
    p_value_adjusted: null,
    ks_statistic: null,
    ks_p_value: null,
    ks_error_bound: null,
    rank_error_bound: null,
    chi_square: null,
    chi_square_dof: null,
    chi_square_p_value: null,
    psi: null,
    psi_threshold: 0.2,
    jensen_shannon: null,
    wasserstein: null,
    wasserstein_error_bound: null,
    missing_count: 0,
    invalid_count: 0,
    unseen_count: 0,
    drift_share: share,
    drifted_features: 0,
    tested_features: 4,
    predictions: 500,
    fallback_predictions: 0,
    late_records: 0,
    ...extra,
  };
}

function feature(hour: number, name: string, psi: number): DriftRecord {
  return { ...dataset(hour, null), feature: name, feature_kind: 'numeric', test: 'KS', psi, drift_share: null };
}

async function feed(evaluator: AlertEvaluator, records: readonly DriftRecord[]): Promise<AlertRecord[]> {
  const out: AlertRecord[] = [];
  for (const record of records) out.push(...(await evaluator.add({ kind: 'drift', record })));
  return out;
}

describe('alert rules', () => {
  it('fire once per episode (no repeats while open), resolve below the clear threshold, and keep quiet through the cooldown', async () => {
    const rule = datasetDriftAlert({
      name: 'dataset_drift',
      fireAt: 0.5,
      clearBelow: 0.25,
      cooldown: '3h',
      action: retrain({ window: '6h' }),
    });
    const evaluator = new AlertEvaluator([rule], new MemoryStore());
    const shares = [0.1, 0.6, 0.75, 0.4, 0.3, 0.2, 0.6, 0.7, 0.6, 0.8];
    const out = await feed(
      evaluator,
      shares.map((share, index) => dataset(index + 1, share)),
    );
    // Fires at hour 2; 0.4 and 0.3 are between the thresholds (hysteresis: still open); resolves at hour 6;
    // the cooldown until hour 9 keeps hours 7 and 8 quiet; fires again at hour 9.
    expect(out.map((alert) => [alert.state, alert.at / HOUR])).toEqual([
      ['FIRING', 2],
      ['RESOLVED', 6],
      ['FIRING', 9],
    ]);
    expect(out[0]).toMatchObject({
      alert_id: 'dataset_drift:fraud:7200000',
      action: 'retrain',
      model_name: 'fraud',
      model_version: 1,
      value: 0.6,
    });
    expect(out[1]).toMatchObject({ alert_id: out[0]?.alert_id, fired_at: 2 * HOUR, value: 0.2 });
    expect(out[2]?.alert_id).not.toBe(out[0]?.alert_id);
  });

  it('need forEvaluations breaches in a row, and ignore windows without a verdict', async () => {
    const rule = datasetDriftAlert({ name: 'sustained', fireAt: 0.5, forEvaluations: 2 });
    const out = await feed(new AlertEvaluator([rule], new MemoryStore()), [
      dataset(1, 0.6),
      dataset(2, 0.2),
      dataset(3, 0.6),
      dataset(4, null),
      dataset(5, 0.7),
    ]);
    expect(out.map((alert) => [alert.state, alert.at / HOUR])).toEqual([['FIRING', 5]]);
  });

  it('count inputs above a statistic over a whole window (PSI > 0.2 on ≥ 2 inputs), clearing by the inputs above clearAbove', async () => {
    const rule = featureDriftAlert({ name: 'psi_two_inputs', above: 0.2, clearAbove: 0.1, fireAt: 2, clearBelow: 2 });
    const evaluator = new AlertEvaluator([rule], new MemoryStore());
    const window = (hour: number, psis: Record<string, number>): DriftRecord[] => [
      ...Object.entries(psis).map(([name, psi]) => feature(hour, name, psi)),
      dataset(hour, 0),
    ];
    const out = await feed(evaluator, [
      ...window(1, { amount: 0.3, merchant_category: 0.05, country: 0.01 }),
      ...window(2, { amount: 0.9, merchant_category: 1.2, country: 0.01 }),
      ...window(3, { amount: 0.15, merchant_category: 0.12, country: 0.01 }),
      ...window(4, { amount: 0.05, merchant_category: 0.12, country: 0.01 }),
    ]);
    expect(out.map((alert) => [alert.state, alert.at / HOUR, alert.value])).toEqual([
      ['FIRING', 2, 2],
      ['RESOLVED', 4, 1],
    ]);
    expect(out[0]?.feature).toBe('amount,merchant_category');
    expect(JSON.parse(out[0]?.evidence ?? '{}')).toMatchObject({ features: { amount: 0.9, merchant_category: 1.2 } });
  });

  it('neither fire nor clear a feature-drift alert on a window without statistics (a version without a reference)', async () => {
    const rule = featureDriftAlert({ name: 'psi_two_inputs', above: 0.2, clearAbove: 0.1, fireAt: 2, clearBelow: 2 });
    const evaluator = new AlertEvaluator([rule], new MemoryStore());
    const window = (hour: number, version: number, psis: Record<string, number>): DriftRecord[] => [
      ...Object.entries(psis).map(([name, psi]) => ({ ...feature(hour, name, psi), model_version: version })),
      { ...dataset(hour, version === 0 ? null : 0), model_version: version },
    ];
    const out = await feed(evaluator, [
      ...window(1, 1, { amount: 0.9, merchant_category: 1.2 }),
      ...window(1, 0, {}),
      ...window(2, 0, {}),
      ...window(2, 1, { amount: 0.8, merchant_category: 1.1 }),
      ...window(3, 1, { amount: 0.01, merchant_category: 0.02 }),
    ]);
    expect(out.map((alert) => [alert.state, alert.at / HOUR, alert.model_version])).toEqual([
      ['FIRING', 1, 1],
      ['RESOLVED', 3, 1],
    ]);
  });

  it('count only inputs that also drifted (their verdict) when the rule asks for significance, and clear on the statistic alone', async () => {
    const rule = featureDriftAlert({ name: 'psi_two_drifted', above: 0.2, clearAbove: 0.1, fireAt: 2, clearBelow: 2, significant: true });
    const evaluator = new AlertEvaluator([rule], new MemoryStore());
    const window = (hour: number, psis: Record<string, [number, string]>): DriftRecord[] => [
      ...Object.entries(psis).map(([name, [psi, verdict]]) => ({ ...feature(hour, name, psi), verdict })),
      dataset(hour, 0),
    ];
    const out = await feed(evaluator, [
      ...window(1, { amount: [0.3, 'NO_DRIFT'], country: [0.35, 'DRIFT'] }),
      ...window(2, { amount: [0.3, 'DRIFT'], country: [0.35, 'DRIFT'] }),
      ...window(3, { amount: [0.15, 'NO_DRIFT'], country: [0.15, 'NO_DRIFT'] }),
      ...window(4, { amount: [0.05, 'NO_DRIFT'], country: [0.15, 'NO_DRIFT'] }),
    ]);
    expect(out.map((alert) => [alert.state, alert.at / HOUR, alert.feature])).toEqual([
      ['FIRING', 2, 'amount,country'],
      ['RESOLVED', 4, null],
    ]);
    expect(rule.description).toContain('and drifted');
  });

  it('compare final performance windows with the training metrics, and watch fallbacks, quality and lag', async () => {
    const perf = (hour: number, auc: number, stage: 'FINAL' | 'PROVISIONAL' = 'FINAL'): PerformanceRecord =>
      ({
        model_name: 'fraud',
        model_version: 2,
        window_start: (hour - 1) * HOUR,
        window_end: hour * HOUR,
        stage,
        auc,
        labelled: 500,
        positives: 20,
        training_auc: 0.95,
      }) as PerformanceRecord;
    const evaluator = new AlertEvaluator(
      [
        performanceAlert({ name: 'auc_drop', metric: 'auc', fireAt: 0.1, clearBelow: 0.05 }),
        fallbackAlert({ name: 'fallbacks', fireAt: 0.2, minPredictions: 10 }),
        qualityAlert({ name: 'quality', fireAt: 0.05, minRecords: 10 }),
        consumerLagAlert({ name: 'lag', fireAt: 10_000, clearBelow: 1_000 }),
      ],
      new MemoryStore(),
    );
    const out: AlertRecord[] = [];
    out.push(...(await evaluator.add({ kind: 'performance', record: perf(1, 0.7, 'PROVISIONAL') })));
    out.push(...(await evaluator.add({ kind: 'performance', record: perf(1, 0.8) })));
    out.push(...(await evaluator.add({ kind: 'performance', record: perf(2, 0.92) })));
    out.push(...(await evaluator.add({ kind: 'drift', record: dataset(3, 0, { predictions: 100, fallback_predictions: 40 }) })));
    out.push(
      ...(await evaluator.add({
        kind: 'quality',
        record: {
          source: 'transactions',
          field: 'amount',
          check: 'OUT_OF_RANGE',
          window_start: 0,
          window_end: 60_000,
          records: 100,
          violations: 9,
        },
      })),
    );
    out.push(...(await evaluator.add({ kind: 'lag', record: { group: 'sluice-pipeline', lag: 50_000, topics: [], at: 4 * HOUR } })));
    out.push(...(await evaluator.add({ kind: 'lag', record: { group: 'sluice-pipeline', lag: 5_000, topics: [], at: 4 * HOUR + 1 } })));
    out.push(...(await evaluator.add({ kind: 'lag', record: { group: 'sluice-pipeline', lag: 500, topics: [], at: 4 * HOUR + 2 } })));
    expect(out.map((alert) => `${alert.rule} ${alert.state} ${alert.subject}`)).toEqual([
      'auc_drop FIRING fraud',
      'auc_drop RESOLVED fraud',
      'fallbacks FIRING fraud',
      'quality FIRING transactions/amount/OUT_OF_RANGE',
      'lag FIRING sluice-pipeline',
      'lag RESOLVED sluice-pipeline',
    ]);
    expect(out[0]?.value).toBeCloseTo(0.15, 12);
  });

  it('resolve an open alert that nothing has evaluated for resolveAfter of event time', async () => {
    const evaluator = new AlertEvaluator(
      [
        datasetDriftAlert({ name: 'drift_tumbling', fireAt: 0.5, resolveAfter: '3h' }),
        datasetDriftAlert({ name: 'drift_last_n', window: 'last_n', fireAt: 0.5 }),
      ],
      new MemoryStore(),
    );
    const out = await feed(evaluator, [dataset(1, 0.9), dataset(2, null), dataset(3, null), dataset(4, null)]);
    expect(out.map((alert) => [alert.rule, alert.state, alert.at / HOUR])).toEqual([
      ['drift_tumbling', 'FIRING', 1],
      ['drift_tumbling', 'RESOLVED', 4],
    ]);
    expect(out[1]?.message).toMatch(/no evaluation/);
  });
});
