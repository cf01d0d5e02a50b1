import type { ProcessorStore } from '../state.js';
import {
  emptyAccumulator,
  mergeAccumulators,
  performanceMetrics,
  type AccumulatorShape,
  type PerformanceAccumulator,
} from './accumulator.js';
import type { PerformancePartial } from './partition.js';

/** A monitoring.performance record (schemas/avro/monitoring.performance.avsc). */
export interface PerformanceRecord {
  readonly model_name: string;
  readonly model_version: number;
  readonly window_start: number;
  readonly window_end: number;
  readonly predictions: number;
  readonly labelled: number;
  readonly positives: number;
  readonly accuracy: number | null;
  readonly precision: number | null;
  readonly recall: number | null;
  readonly auc: number | null;
  readonly log_loss: number | null;
  readonly stage: 'PROVISIONAL' | 'FINAL';
  readonly label_completeness: number;
  readonly label_window_ms: number;
  readonly base_rate: number | null;
  readonly ece: number | null;
  readonly auc_error_bound: number | null;
  readonly threshold: number | null;
  readonly predicted_positives: number;
  readonly true_positives: number;
  readonly late_predictions: number;
  readonly late_labels: number;
  readonly training_auc: number | null;
  readonly training_log_loss: number | null;
  readonly training_precision: number | null;
  readonly training_recall: number | null;
  readonly training_ece: number | null;
}

/** What a version was like at training: its held-out metrics and threshold. */
export interface TrainingFacts {
  readonly metrics: Readonly<Record<string, number>>;
  readonly threshold: number | null;
}

export interface PerformanceMergerOptions {
  readonly shape: AccumulatorShape;
  readonly labelWindowMs: (model: string) => number;
  readonly training: (model: string, version: number) => Promise<TrainingFacts | undefined>;
}

interface PendingWindow {
  readonly stage: 'PROVISIONAL' | 'FINAL';
  readonly start: number;
  readonly end: number;
  readonly version: number;
  from: number[];
  latePredictions: number;
  lateLabels: number;
}

export interface PerformanceMergerState {
  partitions: number;
  provisional: (number | null)[];
  final: (number | null)[];
  pending: PendingWindow[];
}

type Stored = PerformanceMergerState | PerformanceAccumulator;

/**
 * The performance stage's second step: partials of every outcomes partition → whole windows →
 * monitoring.performance records, a window's PROVISIONAL once every partition has sent it, its
 * FINAL likewise. Accumulators are merged in partition order.
 */
export class PerformanceMerger {
  constructor(
    private readonly options: PerformanceMergerOptions,
    private readonly store: ProcessorStore<Stored>,
  ) {}

  async add(partial: PerformancePartial): Promise<PerformanceRecord[]> {
    const key = `m:${partial.model}`;
    const state = ((await this.store.get(key)) as PerformanceMergerState | undefined) ?? {
      partitions: 0,
      provisional: [],
      final: [],
      pending: [],
    };
    const records: PerformanceRecord[] = [];
    if (partial.kind === 'window') {
      this.store.put(partKey(partial.model, partial.stage, partial.start, partial.version, partial.partition), partial.accumulator);
      let pending = state.pending.find(
        (entry) => entry.stage === partial.stage && entry.start === partial.start && entry.version === partial.version,
      );
      if (!pending) {
        pending = {
          stage: partial.stage,
          start: partial.start,
          end: partial.end,
          version: partial.version,
          from: [],
          latePredictions: 0,
          lateLabels: 0,
        };
        state.pending.push(pending);
      }
      if (!pending.from.includes(partial.partition)) pending.from.push(partial.partition);
      pending.latePredictions += partial.latePredictions;
      pending.lateLabels += partial.lateLabels;
    } else {
      state.partitions = Math.max(state.partitions, partial.partitions);
      while (state.provisional.length < state.partitions) state.provisional.push(null);
      while (state.final.length < state.partitions) state.final.push(null);
      state.provisional[partial.partition] = partial.provisionalThrough;
      state.final[partial.partition] = partial.finalThrough;
      for (const stage of ['PROVISIONAL', 'FINAL'] as const) {
        const marks = stage === 'PROVISIONAL' ? state.provisional : state.final;
        if (marks.some((mark) => mark === null)) continue;
        const done = Math.min(...marks.map((mark) => mark ?? Number.NEGATIVE_INFINITY));
        const ready = state.pending
          .filter((entry) => entry.stage === stage && entry.end <= done)
          .sort((left, right) => left.start - right.start || left.version - right.version);
        state.pending = state.pending.filter((entry) => !ready.includes(entry));
        for (const window of ready) records.push(await this.record(partial.model, window));
      }
    }
    this.store.put(key, state);
    return records;
  }

  private async record(model: string, window: PendingWindow): Promise<PerformanceRecord> {
    const merged = emptyAccumulator(this.options.shape);
    for (const partition of [...window.from].sort((left, right) => left - right)) {
      const key = partKey(model, window.stage, window.start, window.version, partition);
      const part = (await this.store.get(key)) as PerformanceAccumulator | undefined;
      this.store.delete(key);
      if (part) mergeAccumulators(merged, part);
    }
    const metrics = performanceMetrics(merged);
    const training = await this.options.training(model, window.version);
    const trained = (name: string): number | null => {
      const value = training?.metrics[name];
      return value === undefined || !Number.isFinite(value) ? null : value;
    };
    return {
      model_name: model,
      model_version: window.version,
      window_start: window.start,
      window_end: window.end,
      predictions: merged.predictions,
      labelled: merged.labelled,
      positives: merged.positives,
      accuracy: metrics.accuracy,
      precision: metrics.precision,
      recall: metrics.recall,
      auc: metrics.auc,
      log_loss: metrics.logLoss,
      stage: window.stage,
      label_completeness: metrics.labelCompleteness,
      label_window_ms: this.options.labelWindowMs(model),
      base_rate: metrics.baseRate,
      ece: metrics.ece,
      auc_error_bound: metrics.aucErrorBound,
      threshold: training?.threshold ?? null,
      predicted_positives: merged.predictedPositives,
      true_positives: merged.truePositives,
      late_predictions: window.latePredictions,
      late_labels: window.lateLabels,
      training_auc: trained('auc'),
      training_log_loss: trained('log_loss'),
      training_precision: trained('precision'),
      training_recall: trained('recall'),
      training_ece: trained('ece'),
    };
  }
}

const partKey = (model: string, stage: string, start: number, version: number, partition: number): string =>
  `a:${model}:${stage}:${start}:${version}:${partition}`;
