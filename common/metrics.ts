import client from 'prom-client';

/**
 * Every Prometheus metric of sluice, in one place, prefixed `sluice_`, with bounded labels
 * (stage, topic, partition, reason, source, field, check, model, version) — never a record key.
 * One registry per process; a stage's metrics are created once with `stageMetrics`.
 */
export type MetricsRegistry = client.Registry;

export function createMetricsRegistry(defaults = true): MetricsRegistry {
  const registry = new client.Registry();
  if (defaults) client.collectDefaultMetrics({ register: registry, prefix: 'sluice_process_' });
  return registry;
}
