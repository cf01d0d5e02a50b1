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
  const gauges: readonly { name: string; help: string; figure: keyof ReturnType<typeof distinctTablesMemory> }[] = [
    {
      name: 'sluice_features_distinct_tables_bytes',
      help: "Bytes of the feature windows' distinct-value tables that outgrew their small form (6 values), until collected: 5 a slot (a value's id and its count's byte) in ArrayBuffers outside V8's heap, and about 32 for a count of 255 or more (spilled); the values' strings, one per value whatever the tables holding it, are not counted.",
      figure: 'bytes',
    },
    {
      name: 'sluice_features_distinct_tables',
      help: "The feature windows' distinct-value tables that outgrew their small form (6 values), until collected.",
      figure: 'tables',
    },
    {
      name: 'sluice_features_distinct_values',
      help: "The values that the feature windows' large distinct-value tables hold (each once, whatever the tables holding it).",
      figure: 'values',
    },
  ];
  for (const { name, help, figure } of gauges) {
    new client.Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(distinctTablesMemory()[figure]);
      },
    });
  }
}
