import {
  KllSketch,
  categoryKey,
  finiteSorted,
  quantileBinEdges,
  mostFrequent,
  sortedBinCounts,
  sortedQuantiles,
  type KllSketchState,
} from './statistics/index.js';

/**
 * A model version's drift reference: summaries of its training set, stored with the version
 * (model.json) and compared against live windows. Per numeric input: cut points at the training
 * quantiles (deciles by default: the fixed bins of PSI and Jensen–Shannon), the training counts in
 * those bins, and a KLL sketch built from the sorted values (KS and Wasserstein; KllSketch.fromSorted). Per categorical input: the training categories
 * (most frequent first, at most maxCategories) and their counts plus an "other" bucket (chi-square,
 * PSI, Jensen–Shannon). The score gets a numeric reference too. Everything is JSON.
 */
export interface NumericReference {
  readonly kind: 'numeric';
  /** Valid (finite) values. */
  readonly count: number;
  /** Null values. */
  readonly missing: number;
  /** NaN and ±Infinity. */
  readonly invalid: number;
  /** Cut points of right-closed bins (edges.length + 1 bins). */
  readonly edges: readonly number[];
  readonly counts: readonly number[];
  readonly sketch: KllSketchState;
}

export interface CategoricalReference {
  readonly kind: 'categorical';
  readonly count: number;
  readonly missing: number;
  readonly invalid: number;
  readonly categories: readonly string[];
  readonly counts: readonly number[];
  readonly other: number;
}

export type InputReference = NumericReference | CategoricalReference;

export interface ModelReference {
  readonly version: 1;
  /** Inputs in the order the monitoring stages report them. */
  readonly inputs: readonly (InputReference & { readonly name: string })[];
  readonly score: NumericReference | undefined;
}

export interface ReferenceOptions {
  /** Quantile bins of numeric inputs (default 10: deciles). */
  readonly bins?: number;
  /** Categories kept per categorical input (default 50). */
  readonly maxCategories?: number;
  /** KLL k of the reference sketches (default 400; built from the sorted values: rank error at most 1/(k+1), 0.25%). */
  readonly sketchK?: number;
}

/** The name monitoring records give the prediction score. */
export const SCORE_FEATURE = '__score__';
/** The name of the dataset-level drift record. */
export const DATASET_FEATURE = '__dataset__';

export function numericReference(values: ArrayLike<number | null | undefined>, options: ReferenceOptions = {}): NumericReference {
  let missing = 0;
  for (let index = 0; index < values.length; index++) if (values[index] === null || values[index] === undefined) missing++;
  // One sort gives the exact quantile cuts, the counts in their bins and the sketch.
  const { values: sorted, invalid } = finiteSorted(values);
  const edges = quantileBinEdges(sortedQuantiles(sorted), options.bins ?? 10) ?? [];
  return {
    kind: 'numeric',
    count: sorted.length,
    missing,
    invalid: invalid - missing,
    edges,
    counts: sortedBinCounts(sorted, edges),
    sketch: KllSketch.fromSorted(sorted, { k: options.sketchK ?? 400 }).toState(),
  };
}

export function categoricalReference(
  values: readonly (string | number | null | undefined)[],
  options: ReferenceOptions = {},
): CategoricalReference {
  // One pass counts every category; the kept ones are the most frequent, the rest is "other".
  const frequencies = new Map<string, number>();
  let missing = 0;
  let invalid = 0;
  for (const value of values) {
    if (value === null || value === undefined) missing++;
    else {
      const key = categoryKey(value);
      if (key === undefined) invalid++;
      else frequencies.set(key, (frequencies.get(key) ?? 0) + 1);
    }
  }
  const categories = mostFrequent(frequencies, options.maxCategories ?? 50);
  const counts = categories.map((category) => frequencies.get(category) ?? 0);
  const count = values.length - missing - invalid;
  return {
    kind: 'categorical',
    count,
    missing,
    invalid,
    categories,
    counts,
    other: count - counts.reduce((sum, current) => sum + current, 0),
  };
}

/** A version's reference from its training rows: numeric and categorical columns by input name, and the training scores. */
export function buildReference(
  columns: {
    readonly numeric: readonly { readonly name: string; readonly values: ArrayLike<number | null | undefined> }[];
    readonly categorical: readonly { readonly name: string; readonly values: readonly (string | null | undefined)[] }[];
    readonly scores?: ArrayLike<number>;
  },
  options: ReferenceOptions = {},
): ModelReference {
  return {
    version: 1,
    inputs: [
      ...columns.numeric.map(({ name, values }) => ({ name, ...numericReference(values, options) })),
      ...columns.categorical.map(({ name, values }) => ({ name, ...categoricalReference(values, options) })),
    ],
    score: columns.scores ? numericReference(columns.scores, options) : undefined,
  };
}

/** A reference read back from model.json, checked (typed unknown: artifacts are files, not trusted code). */
export function parseReference(input: unknown): ModelReference | undefined {
  if (typeof input !== 'object' || input === null) return undefined;
  const { version, inputs, score } = input as { version?: unknown; inputs?: unknown; score?: unknown };
  if (version !== 1 || !Array.isArray(inputs)) throw new RangeError('not a version-1 model reference');
  const checked = (inputs as unknown[]).map((entry) => {
    const reference = entry as Partial<InputReference> & { name?: unknown };
    if (typeof reference.name !== 'string') throw new RangeError('a reference input has no name');
    if (reference.kind === 'numeric') {
      KllSketch.fromState(reference.sketch);
      if (!Array.isArray(reference.edges) || !Array.isArray(reference.counts) || reference.counts.length !== reference.edges.length + 1)
        throw new RangeError(`reference ${reference.name}: bins and counts disagree`);
    } else if (reference.kind === 'categorical') {
      if (
        !Array.isArray(reference.categories) ||
        !Array.isArray(reference.counts) ||
        reference.counts.length !== reference.categories.length
      )
        throw new RangeError(`reference ${reference.name}: categories and counts disagree`);
    } else {
      throw new RangeError(`reference ${reference.name}: unknown kind`);
    }
    return reference as InputReference & { readonly name: string };
  });
  return { version: 1, inputs: checked, score: score === null || score === undefined ? undefined : (score as NumericReference) };
}
