import { encodedInputs, encodeRows, learnEncodings, type CategoricalEncoding } from '../models/encoding.js';
import { buildReference, type ModelReference } from '../monitoring/index.js';
import type { TrainingSet } from './dataset.js';

/**
 * What training adds for categorical inputs and drift monitoring, beside the train job: the
 * one-hot columns (vocabulary from the training set) and the drift reference of a training slice.
 */
export interface EncodedTrainingSet extends TrainingSet {
  readonly encodings: readonly CategoricalEncoding[];
  /** The numeric inputs: the first columns of `rows` (one-hot columns follow). */
  readonly numericInputs: readonly string[];
}

/** The set with its categorical inputs one-hot encoded into `inputs` and `rows` (unchanged when the model has none). */
export function withOneHot(set: TrainingSet): EncodedTrainingSet {
  const encodings = learnEncodings(set.categorical, set.categoryRows);
  return {
    ...set,
    inputs: encodedInputs(set.inputs, encodings),
    rows: encodeRows(set.rows, set.categoryRows, encodings),
    encodings,
    numericInputs: set.inputs,
  };
}

/** The drift reference of the first `count` rows (the training slice): raw numeric and categorical inputs, and their scores. */
export function trainingReference(set: EncodedTrainingSet, count: number, scores: ArrayLike<number>): ModelReference {
  const rows = set.rows.slice(0, count);
  const categories = set.categoryRows.slice(0, count);
  return buildReference({
    numeric: set.numericInputs.map((name, column) => ({ name, values: rows.map((row) => row[column] ?? null) })),
    categorical: set.categorical.map((name, column) => ({ name, values: categories.map((row) => row[column] ?? null) })),
    scores,
  });
}
