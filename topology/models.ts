import { parseDuration } from '../common/durations.js';
import { featureNames, type FeatureView } from './features.js';
import type { SourceDefinition } from './sources.js';

/** How a model is trained: TensorFlow.js logistic regression or one-hidden-layer MLP. */
export type TrainerKind = 'logistic' | 'mlp';

/**
 * A model, declared: which events it scores, its inputs (fields of the event and features of
 * views, as of the event), where its labels come from and how they join (a label event names the
 * scored event's id; a scored event without a label within the window is a negative), the trainer
 * and its hyperparameters, the decision threshold and the fallback score.
 */
export interface ModelDefinition {
  readonly name: string;
  readonly description: string;
  readonly owner: string;
  readonly source: SourceDefinition;
  /** Numeric fields of the scored event used as inputs. */
  readonly fields: readonly string[];
  /**
   * Categorical (string) fields of the scored event used as inputs: one-hot encoded over the
   * categories training saw (an unseen or missing category is all zeros), and tested for drift
   * with chi-square.
   */
  readonly categorical: readonly string[];
  readonly features: readonly { readonly view: FeatureView; readonly features: readonly string[] }[];
  readonly label: {
    readonly source: SourceDefinition;
    /** The label event's field holding the scored event's id (its source idField value). */
    readonly joinField: string;
    /** How long after the event a label may arrive; older unlabelled events are negatives. */
    readonly windowMs: number;
  };
  readonly trainer: TrainerKind;
  readonly params: {
    readonly epochs: number;
    readonly learningRate: number;
    readonly batchSize: number;
    readonly hidden: number;
    readonly l2: number;
    readonly seed: number;
  };
  readonly threshold: number;
  /** The documented score when neither the model nor a previous version can answer. */
  readonly fallbackScore: number;
  /** The latest share of the labelled time range held out for evaluation. */
  readonly testFraction: number;
  /**
   * What becomes of a version trained by an alert's action: `manual` (default) registers it as
   * `candidate` for a person to promote; `auto` makes it champion at once.
   */
  readonly promotion: 'manual' | 'auto';
}

/** Numeric input names in order: fields, then `<view>.<feature>` (categorical inputs: `model.categorical`). */
export function modelInputs(model: ModelDefinition): string[] {
  return [...model.fields, ...model.features.flatMap(({ view, features }) => features.map((feature) => `${view.name}.${feature}`))];
}

/** Every input a model's monitoring watches: the numeric ones, then the categorical ones. */
export function monitoredInputs(model: ModelDefinition): { readonly name: string; readonly kind: 'numeric' | 'categorical' }[] {
  return [
    ...modelInputs(model).map((name) => ({ name, kind: 'numeric' as const })),
    ...model.categorical.map((name) => ({ name, kind: 'categorical' as const })),
  ];
}

export function modelDefinition(
  input: Omit<ModelDefinition, 'label' | 'params' | 'testFraction' | 'fallbackScore' | 'categorical' | 'promotion'> & {
    readonly categorical?: readonly string[];
    readonly promotion?: 'manual' | 'auto';
    readonly label: Omit<ModelDefinition['label'], 'windowMs'> & { readonly window: string | number };
    readonly params?: Partial<ModelDefinition['params']>;
    readonly testFraction?: number;
    readonly fallbackScore?: number;
  },
): ModelDefinition {
  if (!/^[a-z][a-z0-9_]*$/.test(input.name)) throw new Error(`model name "${input.name}" must be lower-case letters, digits and _`);
  for (const { view, features } of input.features) {
    if (view.source.name !== input.source.name)
      throw new Error(`model ${input.name} scores ${input.source.name} events but view ${view.name} reads ${view.source.name}`);
    for (const feature of features)
      if (!featureNames(view).includes(feature)) throw new Error(`view ${view.name} has no feature ${feature}`);
  }
  for (const field of input.categorical ?? []) {
    const declared = input.source.rawSchema.fields.find((candidate) => candidate.name === field);
    if (!declared) throw new Error(`model ${input.name}: categorical input ${field} is not a field of source ${input.source.name}`);
  }
  return Object.freeze({
    ...input,
    categorical: Object.freeze([...(input.categorical ?? [])]),
    promotion: input.promotion ?? 'manual',
    label: { source: input.label.source, joinField: input.label.joinField, windowMs: parseDuration(input.label.window) },
    params: { epochs: 12, learningRate: 0.01, batchSize: 256, hidden: 16, l2: 0, seed: 42, ...input.params },
    testFraction: input.testFraction ?? 0.25,
    fallbackScore: input.fallbackScore ?? 0,
  });
}
