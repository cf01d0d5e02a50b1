import client from 'prom-client';
import type { MetricsRegistry } from '../common/metrics.js';

/** Metrics of the offline store, created once per registry. */
export interface OfflineMetrics {
  /** Platform tables found missing (dropped) on insert and created again. */
  readonly tablesRecreated: client.Counter<'table'>;
  /** Users' SQL statements, by outcome (ok, refused, failed). */
  readonly userQueries: client.Counter<'outcome'>;
}

const cache = new WeakMap<MetricsRegistry, OfflineMetrics>();

export function offlineMetrics(registry: MetricsRegistry): OfflineMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: OfflineMetrics = {
    tablesRecreated: new client.Counter({
      name: 'sluice_offline_tables_recreated_total',
      help: 'Offline-store tables that were missing (dropped) when rows arrived, and were created again.',
      labelNames: ['table'],
      registers,
    }),
    userQueries: new client.Counter({
      name: 'sluice_sql_user_queries_total',
      help: "Users' statements on the SQL endpoint, by outcome: ok, refused (before the engine ran them) or failed (ClickHouse's error).",
      labelNames: ['outcome'],
      registers,
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}
