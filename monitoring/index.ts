/**
 * Monitoring as plain code: drift statistics (statistics/), the drift reference stored with a model
 * version, window summaries and their merging, verdicts with corrections, performance on delayed
 * labels, and alert rules. The stages in streams/monitoring/ wire it to topics; replays run it over
 * arrays read back from the same topics.
 */
export * as statistics from './statistics/index.js';
export { BinaryReader, BinaryWriter } from './codec.js';
export { MemoryStore, seedOf, type ProcessorStore } from './state.js';
export { encodeFrame, decodeFrame } from './partials.js';
export {
  buildReference,
  numericReference,
  categoricalReference,
  parseReference,
  SCORE_FEATURE,
  DATASET_FEATURE,
  type ModelReference,
  type InputReference,
  type NumericReference,
  type CategoricalReference,
  type ReferenceOptions,
} from './reference.js';
export { DriftSummary, layoutOf, type SummaryLayout, type PredictionInput } from './drift/summary.js';
export {
  evaluateDrift,
  type DriftEvaluation,
  type DriftSettings,
  type FeatureDrift,
  type DatasetDrift,
  type Verdict,
} from './drift/evaluate.js';
export { driftRecords, type DriftRecord } from './drift/records.js';
export {
  DriftPartition,
  encodeDriftPartial,
  decodeDriftPartial,
  type DriftPartial,
  type DriftPartitionOptions,
  type PartitionProgress,
} from './drift/partition.js';
export { DriftMerger, type DriftMergerOptions, type MergerState } from './drift/merger.js';
export {
  emptyAccumulator,
  addDecided,
  mergeAccumulators,
  performanceMetrics,
  scoreBin,
  type PerformanceAccumulator,
  type AccumulatorShape,
  type PerformanceMetrics,
} from './performance/accumulator.js';
export { OutcomeRouter, encodeOutcome, decodeOutcome, type Outcome, type Routed } from './performance/outcomes.js';
export {
  PerformancePartition,
  encodePerformancePartial,
  decodePerformancePartial,
  type PerformancePartial,
  type PerformancePartitionOptions,
} from './performance/partition.js';
export {
  PerformanceMerger,
  type PerformanceRecord,
  type PerformanceMergerOptions,
  type PerformanceMergerState,
  type TrainingFacts,
} from './performance/merger.js';
export { AlertEvaluator, type AlertInput, type AlertRecord, type QualityRecord, type LagRecord } from './alerts/alerts.js';
