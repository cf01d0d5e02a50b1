/**
 * The dashboard's view of the metrics registry: the same series `/metrics` serves, summed over
 * the labels the page does not show (partitions, topics of a stage). Plain code over the
 * registry's JSON form, so it is tested with arrays.
 */
export interface MetricSample {
  readonly labels: Readonly<Partial<Record<string, string | number>>>;
  readonly value: number;
}

export interface MetricFamily {
  readonly name: string;
  readonly values: readonly MetricSample[];
}

export interface StageSummary {
  readonly stage: string;
  readonly recordsIn: number;
  readonly recordsOut: number;
  /** Records behind the high watermark, over every input partition. */
  readonly lag: number;
  readonly inFlight: number;
  readonly assignedPartitions: number;
  readonly rebalances: number;
}

export interface Counted<L extends string> {
  readonly labels: Readonly<Record<L, string>>;
  readonly count: number;
}

export interface MetricsSummary {
  readonly stages: readonly StageSummary[];
  /** Committed records written, per topic (every stage). */
  readonly topicsOut: Readonly<Record<string, number>>;
  /** Records consumed, per topic (every stage). */
  readonly topicsIn: Readonly<Record<string, number>>;
  readonly predictions: readonly Counted<'model' | 'version' | 'outcome'>[];
  readonly fallbacks: readonly Counted<'model' | 'reason'>[];
  readonly quality: readonly Counted<'source' | 'field' | 'check'>[];
  readonly deadLetters: readonly Counted<'stage' | 'topic' | 'reason'>[];
  /** Rows the sink inserted, per table. */
  readonly sinkRows: Readonly<Record<string, number>>;
}

export function summarizeMetrics(families: readonly MetricFamily[]): MetricsSummary {
  const byName = new Map(families.map((family) => [family.name, family.values]));
  const samples = (name: string): readonly MetricSample[] => byName.get(name) ?? [];
  const sumBy = (name: string, label: string): Map<string, number> => {
    const sums = new Map<string, number>();
    for (const { labels, value } of samples(name)) {
      const key = String(labels[label] ?? '');
      sums.set(key, (sums.get(key) ?? 0) + value);
    }
    return sums;
  };
  const recordsIn = sumBy('sluice_records_in_total', 'stage');
  const recordsOut = sumBy('sluice_records_out_total', 'stage');
  const lag = sumBy('sluice_consumer_lag_records', 'stage');
  const inFlight = sumBy('sluice_in_flight_records', 'stage');
  const assigned = sumBy('sluice_assigned_partitions', 'stage');
  const rebalances = sumBy('sluice_rebalances_total', 'stage');
  const stageNames = new Set([...recordsIn.keys(), ...recordsOut.keys(), ...lag.keys(), ...assigned.keys()]);
  const stages = [...stageNames].sort().map((stage) => ({
    stage,
    recordsIn: recordsIn.get(stage) ?? 0,
    recordsOut: recordsOut.get(stage) ?? 0,
    lag: lag.get(stage) ?? 0,
    inFlight: inFlight.get(stage) ?? 0,
    assignedPartitions: assigned.get(stage) ?? 0,
    rebalances: rebalances.get(stage) ?? 0,
  }));
  return {
    stages,
    topicsOut: Object.fromEntries(sumBy('sluice_records_out_total', 'topic')),
    topicsIn: Object.fromEntries(sumBy('sluice_records_in_total', 'topic')),
    predictions: counted(samples('sluice_predictions_total'), ['model', 'version', 'outcome']),
    fallbacks: counted(samples('sluice_prediction_fallbacks_total'), ['model', 'reason']),
    quality: counted(samples('sluice_quality_violations_total'), ['source', 'field', 'check']),
    deadLetters: counted(samples('sluice_dead_letters_total'), ['stage', 'topic', 'reason']),
    sinkRows: Object.fromEntries(sumBy('sluice_sink_rows_total', 'table')),
  };
}

/** Sums samples by the named labels (others, such as a partition, are added up), largest first. */
function counted<L extends string>(samples: readonly MetricSample[], names: readonly L[]): Counted<L>[] {
  const sums = new Map<string, Counted<L>>();
  for (const { labels, value } of samples) {
    const picked = Object.fromEntries(names.map((name) => [name, String(labels[name] ?? '')])) as Record<L, string>;
    const key = JSON.stringify(picked);
    sums.set(key, { labels: picked, count: (sums.get(key)?.count ?? 0) + value });
  }
  return [...sums.values()].filter((entry) => entry.count > 0).sort((a, b) => b.count - a.count);
}
