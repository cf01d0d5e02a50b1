import type { StageDefinition } from './definition.js';

/**
 * A pipeline: stages fused into sub-topologies. A sub-topology reads one source topic (keyed by
 * the entity its stages work on) and runs its steps in order; a step reads either the source or a
 * topic an earlier step writes, and that record is handed to it in memory (the topic is still
 * written: the log stays the truth). One task per partition number runs the whole chain, with one
 * consumer position, one transaction per commit and one state folder.
 *
 * A record an earlier step writes to a fused topic belongs to the task of its key's partition. If
 * that is another task, it travels through the sub-topology's repartition topic for that fused
 * topic; the owning task writes it to the fused topic and runs the later steps. So every partition
 * of a fused topic is written by exactly one task, in the order it processes records — which is
 * the order a replay of the topic reads.
 */
export interface StepSpec {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- steps of one chain decode to different value types
  readonly stage: StageDefinition<any>;
  /** The topic this step reads: the source, or a topic an earlier step writes. */
  readonly input: string;
}

export interface SubTopologySpec {
  /** Names the tasks (`<name>.<partition>`), state folders and changelogs. */
  readonly name: string;
  readonly source: string;
  readonly steps: readonly StepSpec[];
}

export interface PipelineSpec {
  readonly name: string;
  readonly subtopologies: readonly SubTopologySpec[];
}

export class PipelineDefinitionError extends Error {
  override readonly name = 'PipelineDefinitionError';
}

/** The topics later steps of a sub-topology read from earlier ones (handed over in memory). */
export function fusedTopics(sub: SubTopologySpec): Set<string> {
  return new Set(sub.steps.map((step) => step.input).filter((topic) => topic !== sub.source));
}

/** The internal topic that carries records of a fused topic to the task that owns their key (the group id carries the topic prefix). */
export function repartitionTopicName(groupId: string, topic: string): string {
  return `${groupId}-${topic}-repartition`;
}

/** A pipeline of one stage: one single-step sub-topology per input topic (`sluice run <stage>`). */
export function singleStagePipeline<V>(stage: StageDefinition<V>): PipelineSpec {
  return {
    name: stage.name,
    subtopologies: stage.inputs.map((topic) => ({ name: topic, source: topic, steps: [{ stage, input: topic }] })),
  };
}

/** Checks a pipeline's shape before anything starts: readable inputs, unique names, producers before consumers. */
export function validatePipeline(spec: PipelineSpec): void {
  const names = new Set<string>();
  const sources = new Set<string>();
  for (const sub of spec.subtopologies) {
    if (names.has(sub.name)) throw new PipelineDefinitionError(`sub-topology ${sub.name} is declared twice`);
    names.add(sub.name);
    if (sources.has(sub.source)) throw new PipelineDefinitionError(`topic ${sub.source} is the source of two sub-topologies`);
    sources.add(sub.source);
    const [first] = sub.steps;
    if (first?.input !== sub.source)
      throw new PipelineDefinitionError(`sub-topology ${sub.name}: the first step must read the source ${sub.source}`);
    const stages = new Set<string>();
    for (const step of sub.steps) {
      if (!step.stage.inputs.includes(step.input))
        throw new PipelineDefinitionError(`stage ${step.stage.name} does not read ${step.input}`);
      if (stages.has(step.stage.name)) throw new PipelineDefinitionError(`sub-topology ${sub.name} runs stage ${step.stage.name} twice`);
      stages.add(step.stage.name);
    }
  }
}
