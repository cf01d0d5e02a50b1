import type { StageDefinition } from './definition.js';
import { singleStagePipeline } from './pipeline.js';
import { runPipeline, type RunningStage, type StageOptions } from './runner.js';

/**
 * Runs one stage alone, as its own consumer group (`sluice run <stage>`, and every stage of a
 * test): a pipeline of one step per input topic.
 */
export function runStage<V>(definition: StageDefinition<V>, options: StageOptions): Promise<RunningStage> {
  return runPipeline(singleStagePipeline(definition), options);
}
