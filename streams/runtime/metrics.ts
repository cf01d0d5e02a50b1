import client from 'prom-client';
import type { MetricsRegistry } from '../../common/metrics.js';
import { RocksDatabase, type CacheBudget } from '../../state/index.js';

/** The metrics every stage exports (labels carry the stage name), created once per registry. */
export interface StageMetrics {
  readonly recordsIn: client.Counter<'stage' | 'topic'>;
  readonly recordsFetched: client.Counter<'stage' | 'topic'>;
  readonly recordsOut: client.Counter<'stage' | 'topic'>;
  readonly errors: client.Counter<'stage' | 'reason'>;
  readonly deadLetters: client.Counter<'stage' | 'topic' | 'reason'>;
  readonly retries: client.Counter<'stage' | 'reason'>;
  readonly processingSeconds: client.Histogram<'stage'>;
  readonly eventTimeLagSeconds: client.Gauge<'stage' | 'topic' | 'partition'>;
  readonly consumerLag: client.Gauge<'stage' | 'topic' | 'partition'>;
  readonly inFlight: client.Gauge<'stage'>;
  readonly pausedPartitions: client.Gauge<'stage'>;
  readonly assignedPartitions: client.Gauge<'stage'>;
  readonly transactions: client.Counter<'stage' | 'outcome'>;
  readonly commitSeconds: client.Histogram<'stage'>;
  readonly rebalances: client.Counter<'stage'>;
  readonly duplicates: client.Counter<'stage' | 'topic'>;
  readonly lateRecords: client.Counter<'stage' | 'topic' | 'policy'>;
  readonly qualityViolations: client.Counter<'stage' | 'source' | 'field' | 'check'>;
  readonly restoredRecords: client.Counter<'stage' | 'store'>;
  readonly restoreSeconds: client.Histogram<'stage' | 'store'>;
  readonly changelogSkipped: client.Counter<'stage' | 'store'>;
  readonly sinkRows: client.Counter<'table'>;
  readonly sinkDuplicates: client.Counter<'table'>;
}

const cache = new WeakMap<MetricsRegistry, StageMetrics>();

/** The stage metrics of a registry (created on first use; labels carry the stage name). */
export function stageMetrics(registry: MetricsRegistry): StageMetrics {
  const existing = cache.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: StageMetrics = {
    recordsIn: new client.Counter({
      name: 'sluice_records_in_total',
      help: 'Records consumed, per input topic.',
      labelNames: ['stage', 'topic'],
      registers,
    }),
    recordsFetched: new client.Counter({
      name: 'sluice_records_fetched_total',
      help: 'Records the consumer handed over, per input topic: above records in by what was fetched again (after a seek or a rebalance).',
      labelNames: ['stage', 'topic'],
      registers,
    }),
    recordsOut: new client.Counter({
      name: 'sluice_records_out_total',
      help: 'Records produced (committed), per output topic.',
      labelNames: ['stage', 'topic'],
      registers,
    }),
    errors: new client.Counter({
      name: 'sluice_errors_total',
      help: 'Record failures, by reason (error code), each time one is processed (again after an aborted transaction).',
      labelNames: ['stage', 'reason'],
      registers,
    }),
    deadLetters: new client.Counter({
      name: 'sluice_dead_letters_total',
      help: 'Dead letters committed to the dead-letter topic, by stage, input topic and reason.',
      labelNames: ['stage', 'topic', 'reason'],
      registers,
    }),
    retries: new client.Counter({
      name: 'sluice_retries_total',
      help: 'Retries of transient failures.',
      labelNames: ['stage', 'reason'],
      registers,
    }),
    processingSeconds: new client.Histogram({
      name: 'sluice_processing_seconds',
      help: 'Time to decode and process one record.',
      labelNames: ['stage'],
      registers,
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    }),
    eventTimeLagSeconds: new client.Gauge({
      name: 'sluice_event_time_lag_seconds',
      help: 'Now minus the event time of the last record processed.',
      labelNames: ['stage', 'topic', 'partition'],
      registers,
    }),
    consumerLag: new client.Gauge({
      name: 'sluice_consumer_lag_records',
      help: 'High watermark minus the last fetched offset.',
      labelNames: ['stage', 'topic', 'partition'],
      registers,
    }),
    inFlight: new client.Gauge({
      name: 'sluice_in_flight_records',
      help: 'Records admitted and not yet committed.',
      labelNames: ['stage'],
      registers,
    }),
    pausedPartitions: new client.Gauge({
      name: 'sluice_paused_partitions',
      help: 'Input partitions paused by backpressure.',
      labelNames: ['stage'],
      registers,
    }),
    assignedPartitions: new client.Gauge({
      name: 'sluice_assigned_partitions',
      help: 'Input partitions this instance owns.',
      labelNames: ['stage'],
      registers,
    }),
    transactions: new client.Counter({
      name: 'sluice_transactions_total',
      help: 'Commits of processed records (Kafka transactions under exactly_once), by outcome.',
      labelNames: ['stage', 'outcome'],
      registers,
    }),
    commitSeconds: new client.Histogram({
      name: 'sluice_commit_seconds',
      help: "Time of a commit's transaction (outputs, changelogs and input offsets).",
      labelNames: ['stage'],
      registers,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    }),
    rebalances: new client.Counter({
      name: 'sluice_rebalances_total',
      help: 'Consumer group rebalances this instance went through.',
      labelNames: ['stage'],
      registers,
    }),
    duplicates: new client.Counter({
      name: 'sluice_duplicates_dropped_total',
      help: 'Records dropped as duplicates of an event id already seen.',
      labelNames: ['stage', 'topic'],
      registers,
    }),
    lateRecords: new client.Counter({
      name: 'sluice_late_records_total',
      help: 'Records that arrived after their window closed, by what the policy did.',
      labelNames: ['stage', 'topic', 'policy'],
      registers,
    }),
    qualityViolations: new client.Counter({
      name: 'sluice_quality_violations_total',
      help: 'Data-quality problems found by ingest, per source, field and check.',
      labelNames: ['stage', 'source', 'field', 'check'],
      registers,
    }),
    restoredRecords: new client.Counter({
      name: 'sluice_state_restored_records_total',
      help: 'Changelog records applied while restoring stores.',
      labelNames: ['stage', 'store'],
      registers,
    }),
    restoreSeconds: new client.Histogram({
      name: 'sluice_state_restore_seconds',
      help: 'Time to restore one store partition from its changelog.',
      labelNames: ['stage', 'store'],
      registers,
      buckets: [0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
    }),
    changelogSkipped: new client.Counter({
      name: 'sluice_state_changelog_skipped_total',
      help: 'Changelog records a store could not read and skipped.',
      labelNames: ['stage', 'store'],
      registers,
    }),
    sinkRows: new client.Counter({
      name: 'sluice_sink_rows_total',
      help: 'Rows the sink inserted into the offline store, per table.',
      labelNames: ['table'],
      registers,
    }),
    sinkDuplicates: new client.Counter({
      name: 'sluice_sink_duplicates_skipped_total',
      help: 'Rows the sink skipped because their natural key was in the table already (replays, redeliveries).',
      labelNames: ['table'],
      registers,
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}

interface WatchedCaches {
  readonly budgets: Set<CacheBudget>;
  /** Evictions of budgets no longer watched: the counter keeps them. */
  retiredEvictions: number;
}

const watchedCaches = new WeakMap<MetricsRegistry, WatchedCaches>();

/**
 * Exports a state cache budget's use (bytes held, its bound, entries evicted), read when the
 * registry is scraped: nothing is counted per record. A registry sums the budgets it watches (a
 * process normally has one); the function returned stops watching this one.
 */
export function watchStateCache(registry: MetricsRegistry, budget: CacheBudget): () => void {
  const unwatch = (): void => {
    const watched = watchedCaches.get(registry);
    if (watched?.budgets.delete(budget)) watched.retiredEvictions += budget.evictedEntries;
  };
  const known = watchedCaches.get(registry);
  if (known) {
    known.budgets.add(budget);
    return unwatch;
  }
  const watched: WatchedCaches = { budgets: new Set([budget]), retiredEvictions: 0 };
  watchedCaches.set(registry, watched);
  const sum = (of: (budget: CacheBudget) => number): number => [...watched.budgets].reduce((total, each) => total + of(each), 0);
  const registers = [registry];
  new client.Gauge({
    name: 'sluice_state_cache_bytes',
    help: "Serialized bytes of the state stores' cached entries (the objects take a few times that in the heap).",
    registers,
    collect() {
      this.set(sum((each) => each.usedBytes));
    },
  });
  new client.Gauge({
    name: 'sluice_state_cache_max_bytes',
    help: 'The bound on the state cache (SLUICE_STATE_CACHE_MB).',
    registers,
    collect() {
      this.set(sum((each) => each.maxBytes));
    },
  });
  let reported = 0;
  new client.Counter({
    name: 'sluice_state_cache_evicted_total',
    help: 'Clean entries the state stores dropped from their cache to stay within its bounds (read again from RocksDB when used).',
    registers,
    collect() {
      const total = watched.retiredEvictions + sum((each) => each.evictedEntries);
      if (total > reported) this.inc(total - reported);
      reported = total;
    },
  });
  return unwatch;
}

const watchedRocks = new WeakSet<MetricsRegistry>();

/**
 * Exports RocksDB's own memory figures for the databases open in the process (what Kafka Streams
 * reports as size-all-mem-tables, block-cache-usage and estimate-table-readers-mem), read when the
 * registry is scraped. Once per registry; each registry reports the whole process's figures.
 */
export function watchRocksDb(registry: MetricsRegistry): void {
  if (watchedRocks.has(registry)) return;
  watchedRocks.add(registry);
  new client.Gauge({
    name: 'sluice_rocksdb_memory_bytes',
    help: "RocksDB's memory for the process's open databases, by kind: memtables, block_cache, table_readers.",
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const memory = RocksDatabase.memory();
      this.set({ kind: 'memtables' }, memory.memtables);
      this.set({ kind: 'block_cache' }, memory.blockCache);
      this.set({ kind: 'table_readers' }, memory.tableReaders);
    },
  });
  new client.Gauge({
    name: 'sluice_rocksdb_open_databases',
    help: 'RocksDB databases open in the process (one per state store of each task).',
    registers: [registry],
    collect() {
      this.set(RocksDatabase.openCount);
    },
  });
}
