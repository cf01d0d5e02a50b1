import { DATASET_FEATURE } from '../reference.js';
import type { DriftEvaluation, DriftSettings, FeatureDrift } from './evaluate.js';

/** A monitoring.drift record (schemas/avro/monitoring.drift.avsc). */
export interface DriftRecord {
  readonly model_name: string;
  readonly model_version: number;
  readonly feature: string;
  readonly test: 'KS' | 'CHI_SQUARE' | 'PSI' | 'DATASET';
  readonly statistic: number;
  readonly p_value: number | null;
  readonly threshold: number;
  readonly drifted: boolean;
  readonly sample_size: number;
  readonly baseline_size: number;
  readonly window_start: number;
  readonly window_end: number;
  readonly window_kind: 'TUMBLING' | 'LAST_N';
  readonly last_n_round: number | null;
  readonly feature_kind: 'numeric' | 'categorical' | 'score' | 'dataset';
  readonly verdict: string;
  readonly reason: string | null;
  readonly min_sample: number;
  readonly alpha: number;
  readonly correction: string;
  readonly tests_in_family: number;
  readonly p_value_adjusted: number | null;
  readonly ks_statistic: number | null;
  readonly ks_p_value: number | null;
  readonly ks_error_bound: number | null;
  readonly rank_error_bound: number | null;
  readonly chi_square: number | null;
  readonly chi_square_dof: number | null;
  readonly chi_square_p_value: number | null;
  readonly psi: number | null;
  readonly psi_threshold: number;
  readonly jensen_shannon: number | null;
  readonly wasserstein: number | null;
  readonly wasserstein_error_bound: number | null;
  readonly missing_count: number;
  readonly invalid_count: number;
  readonly unseen_count: number;
  readonly drift_share: number | null;
  readonly drifted_features: number;
  readonly tested_features: number;
  readonly predictions: number;
  readonly fallback_predictions: number;
  readonly late_records: number;
}

export interface WindowOf {
  readonly kind: 'TUMBLING' | 'LAST_N';
  readonly start: number;
  readonly end: number;
  readonly round: number | null;
}

/** The records of one evaluated window: one per input, the score's, then the dataset's (always last: alerts read it as "the window is complete"). */
export function driftRecords(
  model: string,
  version: number,
  window: WindowOf,
  evaluation: DriftEvaluation,
  settings: DriftSettings,
  lateRecords: number,
): DriftRecord[] {
  const common = {
    model_name: model,
    model_version: version,
    window_start: window.start,
    window_end: window.end,
    window_kind: window.kind,
    last_n_round: window.round,
    min_sample: settings.minSample,
    alpha: settings.alpha,
    correction: settings.correction,
    psi_threshold: settings.psiThreshold,
    predictions: evaluation.dataset.predictions,
    fallback_predictions: evaluation.dataset.fallbacks,
  };
  const feature = (drift: FeatureDrift): DriftRecord => ({
    ...common,
    feature: drift.feature,
    test: drift.test,
    statistic: drift.statistic,
    p_value: drift.pValue,
    threshold: settings.psiThreshold,
    drifted: drift.verdict === 'DRIFT',
    sample_size: drift.sampleSize,
    baseline_size: drift.baselineSize,
    feature_kind: drift.featureKind,
    verdict: drift.verdict,
    reason: drift.reason,
    tests_in_family: drift.testsInFamily,
    p_value_adjusted: drift.pValueAdjusted,
    ks_statistic: drift.ks?.statistic ?? null,
    ks_p_value: drift.ks?.pValue ?? null,
    ks_error_bound: drift.ks?.errorBound ?? null,
    rank_error_bound: drift.rankErrorBound,
    chi_square: drift.chiSquare?.statistic ?? null,
    chi_square_dof: drift.chiSquare?.dof ?? null,
    chi_square_p_value: drift.chiSquare?.pValue ?? null,
    psi: drift.psi,
    jensen_shannon: drift.jensenShannon,
    wasserstein: drift.wasserstein?.distance ?? null,
    wasserstein_error_bound: drift.wasserstein?.errorBound ?? null,
    missing_count: drift.missing,
    invalid_count: drift.invalid,
    unseen_count: drift.unseen,
    drift_share: null,
    drifted_features: 0,
    tested_features: 0,
    late_records: 0,
  });
  const { dataset } = evaluation;
  return [
    ...evaluation.features.map(feature),
    ...(evaluation.score ? [feature(evaluation.score)] : []),
    {
      ...common,
      feature: DATASET_FEATURE,
      test: 'DATASET',
      statistic: dataset.share ?? 0,
      p_value: null,
      threshold: settings.driftShare,
      drifted: dataset.verdict === 'DRIFT',
      sample_size: dataset.predictions,
      baseline_size: 0,
      feature_kind: 'dataset',
      verdict: dataset.verdict,
      reason: dataset.reason,
      tests_in_family: evaluation.features.filter((entry) => entry.pValueAdjusted !== null).length,
      p_value_adjusted: null,
      ks_statistic: null,
      ks_p_value: null,
      ks_error_bound: null,
      rank_error_bound: null,
      chi_square: null,
      chi_square_dof: null,
      chi_square_p_value: null,
      psi: null,
      jensen_shannon: null,
      wasserstein: null,
      wasserstein_error_bound: null,
      missing_count: 0,
      invalid_count: 0,
      unseen_count: 0,
      drift_share: dataset.share,
      drifted_features: dataset.drifted,
      tested_features: dataset.tested,
      late_records: lateRecords,
    },
  ];
}
