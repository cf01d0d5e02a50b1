import client from 'prom-client';
import type { MetricsRegistry } from '../../common/metrics.js';

/** Metrics of the monitoring stages (created once per registry; labels bounded: model, version, window kind, rule). */
export interface MonitoringMetrics {
  readonly driftWindows: client.Counter<'model' | 'window' | 'verdict'>;
  readonly driftShare: client.Gauge<'model' | 'version' | 'window'>;
  readonly performanceWindows: client.Counter<'model' | 'stage'>;
  readonly performanceAuc: client.Gauge<'model' | 'version'>;
  readonly lateLabels: client.Counter<'model'>;
  readonly alerts: client.Counter<'rule' | 'state'>;
  readonly openAlerts: client.Gauge<'rule'>;
  readonly webhookDeliveries: client.Counter<'outcome'>;
  readonly actions: client.Counter<'action' | 'status'>;
}

const cache = new WeakMap<MetricsRegistry, MonitoringMetrics>();

export function monitoringMetrics(registry: MetricsRegistry): MonitoringMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: MonitoringMetrics = {
    driftWindows: new client.Counter({
      name: 'sluice_drift_windows_total',
      help: 'Drift windows evaluated, per model, window kind (TUMBLING, LAST_N) and dataset verdict.',
      labelNames: ['model', 'window', 'verdict'],
      registers,
    }),
    driftShare: new client.Gauge({
      name: 'sluice_drift_share',
      help: 'Share of drifted inputs in the latest window evaluated, per model, version and window kind.',
      labelNames: ['model', 'version', 'window'],
      registers,
    }),
    performanceWindows: new client.Counter({
      name: 'sluice_performance_windows_total',
      help: 'Performance reports, per model and stage (PROVISIONAL, FINAL).',
      labelNames: ['model', 'stage'],
      registers,
    }),
    performanceAuc: new client.Gauge({
      name: 'sluice_performance_auc',
      help: 'AUC of the latest final performance window, per model and version.',
      labelNames: ['model', 'version'],
      registers,
    }),
    lateLabels: new client.Counter({
      name: 'sluice_late_labels_total',
      help: 'Labels that arrived after their prediction had been decided (counted, not joined).',
      labelNames: ['model'],
      registers,
    }),
    alerts: new client.Counter({
      name: 'sluice_alerts_total',
      help: 'Alert state changes, per rule and state (FIRING, RESOLVED).',
      labelNames: ['rule', 'state'],
      registers,
    }),
    openAlerts: new client.Gauge({
      name: 'sluice_alerts_open',
      help: 'Alerts firing now, per rule (as seen by this instance).',
      labelNames: ['rule'],
      registers,
    }),
    webhookDeliveries: new client.Counter({
      name: 'sluice_alert_webhook_deliveries_total',
      help: 'Alert webhook deliveries, by outcome (delivered, failed after retries).',
      labelNames: ['outcome'],
      registers,
    }),
    actions: new client.Counter({
      name: 'sluice_alert_actions_total',
      help: 'Alert actions run, by action and status.',
      labelNames: ['action', 'status'],
      registers,
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}
