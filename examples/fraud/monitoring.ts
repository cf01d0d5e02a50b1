import {
  consumerLagAlert,
  datasetDriftAlert,
  fallbackAlert,
  featureDriftAlert,
  monitoring,
  performanceAlert,
  qualityAlert,
  retrain,
  type AlertRule,
} from 'sluice';

/**
 * The demo's monitoring: hourly event-time windows and a view of the last 1,000 predictions,
 * compared with the training reference of the model version that made them; alerts on input drift
 * (the last-N view retrains the model: a candidate, since the fraud model's promotion is manual),
 * dataset drift, AUC falling below training, fallbacks, bad data and consumer lag.
 */
export const settings = monitoring({ window: '1h', grace: '5m', lastN: { events: 1_000, blocks: 4 }, minSample: 100 });

export const alerts: AlertRule[] = [
  featureDriftAlert({
    name: 'input_drift',
    description: 'PSI above 0.2 on two or more inputs in an hourly window',
    above: 0.2,
    clearAbove: 0.1,
    fireAt: 2,
    clearBelow: 2,
    severity: 'WARNING',
  }),
  featureDriftAlert({
    name: 'input_drift_recent',
    description: 'PSI above 0.2 on two or more inputs over the last 1,000 predictions',
    window: 'last_n',
    above: 0.2,
    clearAbove: 0.1,
    fireAt: 2,
    clearBelow: 2,
    severity: 'CRITICAL',
    action: retrain({ window: '6h' }),
  }),
  datasetDriftAlert({ name: 'dataset_drift', fireAt: 0.5, clearBelow: 0.25 }),
  performanceAlert({ name: 'auc_drop', metric: 'auc', fireAt: 0.15, clearBelow: 0.05, forEvaluations: 2, minLabelled: 200 }),
  fallbackAlert({ name: 'fallbacks', fireAt: 0.5, clearBelow: 0.1, minPredictions: 100 }),
  qualityAlert({ name: 'bad_transactions', fireAt: 0.05, clearBelow: 0.01, subjects: ['transactions'] }),
  consumerLagAlert({ name: 'pipeline_lag', fireAt: 50_000, clearBelow: 5_000 }),
];
