/**
 * The public API of a topology file (`import { ... } from 'sluice'`): declarations only.
 */
export { defineTopology, sourceNamed, viewNamed, modelNamed, TopologyError } from './topology.js';
export type { Topology, TopologyInput, DemoDefinition, DemoRecord, DemoWindow } from './topology.js';
export { source, type SourceDefinition, type SourceInput, type FieldRule } from './sources.js';
export {
  featureView,
  count,
  sum,
  mean,
  min,
  max,
  last,
  distinctCount,
  stddev,
  slidingWindow,
  tumblingWindow,
  hoppingWindow,
  sessionWindow,
  featureNames,
  type FeatureView,
  type FeatureViewInput,
  type FeatureValues,
  type FeatureWindow,
  type TtlClock,
  type AggregationSpec,
  type FeatureRow,
} from './features.js';
export {
  modelDefinition as model,
  modelDefinition,
  modelInputs,
  monitoredInputs,
  type ModelDefinition,
  type TrainerKind,
} from './models.js';
export {
  monitoring,
  datasetDriftAlert,
  featureDriftAlert,
  performanceAlert,
  qualityAlert,
  fallbackAlert,
  consumerLagAlert,
  retrain,
  MonitoringDefinitionError,
  type MonitoringSettings,
  type MonitoringInput,
  type AlertRule,
  type AlertCondition,
  type RetrainAction,
  type Severity,
  type Correction,
  type DriftWindowKind,
  type DriftStatistic,
  type PerformanceMetric,
} from './monitoring.js';
export { readAvroSchema, type AvroRecordSchema } from '../schemas/source-schemas.js';
export { uniformRandom, seededRandom } from '../common/random.js';
