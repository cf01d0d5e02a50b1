export {
  runStage,
  type QueryResult,
  type ProcessOutput,
  type StageDefinition,
  type StageOptions,
  type RunningStage,
  type StageStatus,
  type TaskContext,
} from './stage.js';
export type { Guarantee } from './committer.js';
export { deadLetter, DLQ_HEADERS } from './dead-letter.js';
export { ProcessingError, ValidationError, LateRecordError, StageFailedError, isRetriable, reasonOf } from './errors.js';
export { headersOf, type RawRecord, type StreamRecord, type OutputRecord, type Headers } from './record.js';
export { WatermarkTracker } from './watermarks.js';
export { WindowedAggregator, type Aggregation, type LatePolicy, type WindowResult, type AddOutcome } from './windows/aggregator.js';
export { tumbling, hopping, sliding, session, fixedWindowsFor, type Window, type WindowSpec } from './windows/window.js';
export { toTopic, toTopicRaw, type Keyed } from './to-topic.js';
