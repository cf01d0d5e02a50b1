import client from 'prom-client';
import type { MetricsRegistry } from '../../common/metrics.js';
import { distinctTablesMemory } from './value-counts.js';

const watched = new WeakSet<MetricsRegistry>();

/**
 * Exports the distinct-count state held in memory (the kept windows' tables of distinct values,
 * `distinctTablesMemory`), read when the registry is scraped: nothing is counted per event. Once
 * per registry; each registry reports the whole process's tables. It is state that grows with a
 * window's distinct values (a card's merchants over a week). The state cache's bytes include the
 * tables of the windows kept with the cached heads (counted with them), not those of other windows
 * (being computed, or remembered by the engine for the next late event).
 */
export function watchDistinctTables(registry: MetricsRegistry): void {
  if (watched.has(registry)) return;
  watched.add(registry);
  const registers = [registry];
  new client.Gauge({
    name: 'sluice_features_distinct_tables_bytes',
    help: "Bytes of the feature windows' distinct-value tables that outgrew their small form (6 values), until collected: 8 a slot (a value's id and its count) in ArrayBuffers outside V8's heap; the values' strings, one per value whatever the tables holding it, are not counted.",
    registers,
    collect() {
      this.set(distinctTablesMemory().bytes);
    },
  });
  new client.Gauge({
    name: 'sluice_features_distinct_tables',
    help: "The feature windows' distinct-value tables that outgrew their small form (6 values), until collected.",
    registers,
    collect() {
      this.set(distinctTablesMemory().tables);
    },
  });
  new client.Gauge({
    name: 'sluice_features_distinct_values',
    help: "The values that the feature windows' large distinct-value tables hold (each once, whatever the tables holding it).",
    registers,
    collect() {
      this.set(distinctTablesMemory().values);
    },
  });
}
