import client from 'prom-client';
import type { MetricsRegistry } from '../../common/metrics.js';
import { distinctTablesMemory } from './value-counts.js';

const watched = new WeakSet<MetricsRegistry>();

/**
 * Exports the distinct-count state held on the heap (the kept windows' tables of distinct values,
 * `distinctTablesMemory`), read when the registry is scraped: nothing is counted per event. Once
 * per registry; each registry reports the whole process's tables. It is state that grows with a
 * window's distinct values (a card's merchants over a week), apart from what the state cache holds.
 */
export function watchDistinctTables(registry: MetricsRegistry): void {
  if (watched.has(registry)) return;
  watched.add(registry);
  const registers = [registry];
  new client.Gauge({
    name: 'sluice_features_distinct_tables_bytes',
    help: "Heap bytes of the feature windows' distinct-value tables larger than their first 8 slots (12 bytes a slot; the values' strings are shared), until collected.",
    registers,
    collect() {
      this.set(distinctTablesMemory().bytes);
    },
  });
  new client.Gauge({
    name: 'sluice_features_distinct_tables',
    help: "The feature windows' distinct-value tables larger than their first 8 slots, until collected.",
    registers,
    collect() {
      this.set(distinctTablesMemory().tables);
    },
  });
}
