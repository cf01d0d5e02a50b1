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
 * The demo's monitoring: hourly event-time windows and a view of the last 600 predictions,
 * compared with the training reference of the model version that made them; alerts on input drift
 * (retraining the model: a candidate, since the fraud model's promotion is manual), dataset drift,
 * AUC falling below training, fallbacks, bad data and consumer lag.
 *
 * The input-drift rule asks for significance beside the effect size: in an hour of little traffic,
 * card-level features (a card's country, its hourly sums) move by more than PSI 0.2 by chance.
 * Input drift is watched twice. `input_drift` watches the last-N view (the latest 600 predictions,
 * evaluated at the close of each minute of event time once a quarter of it is new, 2 minutes of
 * grace for late events): at the demo's default 3 events/s (1.8 predictions/s) the view spans under
 * 6 minutes, so drift is alerted minutes after it starts, and the model retrained. At low traffic
 * the view spans hours and reacts later. A smaller view reacts sooner but is noisier: the tests'
 * p-values assume independent predictions, and a fraud burst is several large foreign payments of
 * one card within minutes. At the integration tests' 240 predictions an hour (a 6-hour training
 * set of 1,440), a view of 400 raised a false alert on `card_txn_1h.amount_sum` (PSI 0.41) and
 * `country`; at 600 one input at most crossed 0.2 (0.26) in 30 hours. `input_drift_hourly` watches
 * the hourly windows, as does the dataset-drift rule.
 */
export const settings = monitoring({ window: '1h', grace: '2m', lastN: { events: 600, blocks: 4, every: '1m' }, minSample: 100 });

export const alerts: AlertRule[] = [
  featureDriftAlert({
    name: 'input_drift',
    description: 'PSI above 0.2 and a drift verdict on two or more inputs in the last 600 predictions',
    window: 'last_n',
    above: 0.2,
    clearAbove: 0.1,
    fireAt: 2,
    clearBelow: 2,
    significant: true,
    severity: 'CRITICAL',
    action: retrain({ window: '6h' }),
  }),
  featureDriftAlert({
    name: 'input_drift_hourly',
    description: 'PSI above 0.2 and a drift verdict on two or more inputs in an hourly window',
    above: 0.2,
    clearAbove: 0.1,
    fireAt: 2,
    clearBelow: 2,
    significant: true,
  }),
  datasetDriftAlert({ name: 'dataset_drift', fireAt: 0.5, clearBelow: 0.25 }),
  performanceAlert({ name: 'auc_drop', metric: 'auc', fireAt: 0.15, clearBelow: 0.05, forEvaluations: 2, minLabelled: 200 }),
  fallbackAlert({ name: 'fallbacks', fireAt: 0.5, clearBelow: 0.1, minPredictions: 100 }),
  qualityAlert({ name: 'bad_transactions', fireAt: 0.05, clearBelow: 0.01, subjects: ['transactions'] }),
  consumerLagAlert({ name: 'pipeline_lag', fireAt: 50_000, clearBelow: 5_000 }),
];
