import { SluiceError } from '../common/errors.js';
import { encodedInputs } from './encoding.js';
import { featureNames, type FeatureView } from '../topology/features.js';
import type { ModelDefinition } from '../topology/models.js';
import type { ModelMetadata, ModelVersion } from './registry.js';

/**
 * What a version's recorded inputs are checked against: the fields of the scored events and the
 * feature views as defined now (their features and, where known, their definition versions).
 */
export interface CurrentInputs {
  readonly fields: readonly string[];
  readonly views: ReadonlyMap<string, { readonly features: readonly string[]; readonly version?: number }>;
}

/** The version's inputs do not match the current definitions: it must not receive traffic. */
export class IncompatibleModelVersionError extends SluiceError {
  constructor(
    readonly model: string,
    readonly version: number,
    readonly problems: readonly string[],
  ) {
    super('SLUICE_MODEL_INPUTS_MISMATCH', `model ${model} version ${version} cannot serve: ${problems.join('; ')}`, {
      context: { model, version },
    });
  }
}

/**
 * Why a version trained on `inputs` (field names and `<view>.<feature>`) with the view definition
 * versions `recorded` cannot be scored from today's events and views; empty when it can. An input
 * missing today, or a view whose definition changed since training (another version: the same
 * name would now mean other numbers), is a problem.
 */
export function inputProblems(inputs: readonly string[], recorded: Readonly<Record<string, number>>, current: CurrentInputs): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  for (const input of inputs) {
    const dot = input.indexOf('.');
    if (dot < 0) {
      if (!current.fields.includes(input)) problems.push(`input ${input} is not a field of the scored events`);
      continue;
    }
    const view = input.slice(0, dot);
    const feature = input.slice(dot + 1);
    const defined = current.views.get(view);
    if (!defined) problems.push(`input ${input}: there is no feature view ${view} now`);
    else if (!defined.features.includes(feature)) problems.push(`input ${input}: view ${view} has no feature ${feature} now`);
    else used.add(view);
  }
  for (const view of used) {
    const now = current.views.get(view)?.version;
    const then = recorded[view];
    if (now !== undefined && then !== undefined && now !== then)
      problems.push(`view ${view} was at definition version ${then} when the model was trained and is at version ${now} now`);
  }
  return problems;
}

/** Today's inputs of a model's scored events: every field of its source's events, the topology's views (and their versions where known). */
export function currentInputs(
  model: ModelDefinition,
  views: readonly FeatureView[],
  versions: ReadonlyMap<string, number> = new Map(),
): CurrentInputs {
  return {
    fields: model.source.eventsSchema.fields.map((field) => field.name),
    views: new Map(
      views.map((view) => {
        const version = versions.get(view.name);
        return [view.name, { features: featureNames(view), ...(version === undefined ? {} : { version }) }];
      }),
    ),
  };
}

/**
 * The problems of a registered version against today's inputs (see inputProblems). Its one-hot
 * columns (`<field>=<category>`) are checked as the categorical fields they come from.
 */
export function versionProblems(version: ModelVersion, metadata: ModelMetadata, current: CurrentInputs): string[] {
  const encodings = metadata.categorical ?? [];
  const oneHot = new Set(encodedInputs([], encodings));
  const inputs = [...metadata.inputs.filter((input) => !oneHot.has(input)), ...encodings.map((encoding) => encoding.field)];
  return inputProblems(inputs, version.dataset.feature_versions, current);
}
