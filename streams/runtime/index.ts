export { runStage } from './stage.js';
export { runPipeline, type QueryResult, type StageOptions, type RunningStage, type StageStatus } from './runner.js';
export type { ProcessOutput, StageDefinition, TaskContext } from './definition.js';
export {
  singleStagePipeline,
  repartitionTopicName,
  fusedTopics,
  type PipelineSpec,
  type SubTopologySpec,
  type StepSpec,
} from './pipeline.js';
export type { Guarantee } from './committer.js';
export { deadLetter, DLQ_HEADERS } from './dead-letter.js';
export { ProcessingError, ValidationError, LateRecordError, StageFailedError, isRetriable, reasonOf } from './errors.js';
export { headersOf, sequenceOf, SEQUENCE_HEADER, type RawRecord, type StreamRecord, type OutputRecord, type Headers } from './record.js';
export { WatermarkTracker } from './watermarks.js';
export { WindowedAggregator, type Aggregation, type LatePolicy, type WindowResult, type AddOutcome } from './windows/aggregator.js';
export { tumbling, hopping, sliding, session, fixedWindowsFor, lookBack, type Window, type WindowSpec } from './windows/window.js';
export { toTopic, toTopicRaw, type Keyed } from './to-topic.js';
export { stageMetrics, type StageMetrics } from './metrics.js';
