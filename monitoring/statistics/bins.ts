import { finiteSorted } from './samples.js';

/**
 * Fixed bins for binned drift measures (PSI, chi-square, Jensen–Shannon): numeric bins cut at the
 * reference's quantiles, a mergeable histogram over them, and mergeable categorical frequency
 * tables with an "other" bucket. All state is plain JSON-able data (no Infinity, no Map), so a
 * drift stage can keep it in its state store as it is.
 */

/** Anything that answers quantiles: a KllSketch, or sampleQuantiles(values). */
export interface QuantileSource {
  quantile(q: number): number | undefined;
}

/**
 * Quantiles of a raw sample by the inverse empirical CDF: the smallest value v with
 * (count of values ≤ v) ≥ q·n, i.e. sorted[⌈q·n⌉ - 1] (numpy's method='inverted_cdf'); q = 0 gives
 * the minimum. Invalid entries (NaN, ±Infinity, null, undefined) are left out; undefined when no
 * valid value is left. Sorts a copy once, O(n log n); each quantile is then O(1).
 */
export function sampleQuantiles(sample: ArrayLike<number | null | undefined>): QuantileSource & { readonly count: number } {
  return sortedQuantiles(finiteSorted(sample).values);
}

/** The quantiles of finite values already in ascending order, as sampleQuantiles gives them (O(1) each). */
export function sortedQuantiles(sorted: Float64Array): QuantileSource & { readonly count: number } {
  return {
    count: sorted.length,
    quantile(q: number): number | undefined {
      if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile needs q in [0, 1], got ${q}`);
      if (sorted.length === 0) return undefined;
      return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)];
    },
  };
}

/**
 * The counts addToHistogram would give over the bins cut at edges, for finite values in ascending
 * order: O(bins · log n) by binary search instead of O(n · log bins).
 */
export function sortedBinCounts(sorted: Float64Array, edges: readonly number[]): number[] {
  const counts: number[] = [];
  let below = 0;
  for (const edge of edges) {
    // The values ≤ edge: the first position holding a larger value.
    let low = below;
    let high = sorted.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((sorted[middle] ?? Infinity) <= edge) low = middle + 1;
      else high = middle;
    }
    counts.push(low - below);
    below = low;
  }
  counts.push(sorted.length - below);
  return counts;
}

/**
 * Cut points for binCount bins from the reference's quantiles j/binCount, j = 1..binCount-1
 * (deciles by default). Equal cut points (ties in the reference) are collapsed into one, so a
 * reference with heavy ties gets fewer bins, and a one-valued reference gets exactly two:
 * (-∞, v] and (v, ∞). The bins are right-closed and open-ended: bin 0 is (-∞, c[0]], bin i is
 * (c[i-1], c[i]], the last is (c[last], ∞), so every finite value has a bin. Returns an ascending
 * array of binCount - 1 or fewer finite numbers; undefined when the reference is empty (no bins).
 * From sampleQuantiles the cuts are exact; from a KLL sketch each cut's true rank in the reference
 * is within the sketch's rankErrorBound of j/binCount (the bins are then only nearly equal-mass,
 * which PSI and chi-square do not need: both sides are counted over the same fixed bins).
 */
export function quantileBinEdges(reference: QuantileSource, binCount = 10): number[] | undefined {
  if (!Number.isInteger(binCount) || binCount < 1) throw new RangeError(`binCount must be a positive integer, got ${binCount}`);
  if (reference.quantile(0) === undefined) return undefined;
  const edges: number[] = [];
  for (let j = 1; j < binCount; j++) {
    const cut = reference.quantile(j / binCount);
    if (cut !== undefined && (edges.length === 0 || cut > (edges[edges.length - 1] ?? -Infinity))) edges.push(cut);
  }
  return edges;
}

/** The bin of a finite value among right-closed bins cut at edges: the first i with value ≤ edges[i]. O(log bins). */
export function binIndex(edges: readonly number[], value: number): number {
  let low = 0;
  let high = edges.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (value <= (edges[middle] ?? Infinity)) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** Counts over fixed numeric bins. JSON-able; mutate only through addToHistogram. */
export interface Histogram {
  /** Cut points, as from quantileBinEdges: edges.length + 1 bins. */
  readonly edges: readonly number[];
  /** counts[i]: values in bin i. */
  readonly counts: number[];
  /** Values never binned: NaN, ±Infinity, null, undefined. */
  invalid: number;
}

/** An empty histogram over the bins cut at edges (strictly ascending finite numbers, possibly none). */
export function createHistogram(edges: readonly number[]): Histogram {
  edges.forEach((edge, index) => {
    if (!Number.isFinite(edge)) throw new RangeError(`bin edges must be finite, got ${edge}`);
    if (index > 0 && edge <= (edges[index - 1] ?? -Infinity)) throw new RangeError('bin edges must be strictly ascending');
  });
  return { edges: [...edges], counts: new Array<number>(edges.length + 1).fill(0), invalid: 0 };
}

/** Counts one value in its bin (O(log bins)); an invalid value is counted in histogram.invalid instead. Returns whether it was binned. */
export function addToHistogram(histogram: Histogram, value: number | null | undefined): boolean {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    histogram.invalid++;
    return false;
  }
  const index = binIndex(histogram.edges, value);
  histogram.counts[index] = (histogram.counts[index] ?? 0) + 1;
  return true;
}

/** A new histogram holding both histograms' counts; they must have the same edges (RangeError otherwise). */
export function mergeHistograms(left: Histogram, right: Histogram): Histogram {
  if (left.edges.length !== right.edges.length || left.edges.some((edge, index) => edge !== right.edges[index])) {
    throw new RangeError('cannot merge histograms over different bins');
  }
  return {
    edges: [...left.edges],
    counts: left.counts.map((count, index) => count + (right.counts[index] ?? 0)),
    invalid: left.invalid + right.invalid,
  };
}

/** Valid values counted in a histogram. */
export function histogramTotal(histogram: Histogram): number {
  return histogram.counts.reduce((total, count) => total + count, 0);
}

/** A value of a categorical feature; numbers and booleans are counted by their String(). */
export type CategoryValue = string | number | boolean | null | undefined;

/**
 * Counts of a categorical feature over the reference's categories, plus one bucket for everything
 * else. JSON-able; mutate only through addCategory.
 */
export interface CategoryCounts {
  /** The reference's categories, in a fixed order. */
  readonly categories: readonly string[];
  /** counts[i]: values equal to categories[i]. */
  readonly counts: number[];
  /** Valid values outside categories: categories unseen in the reference, or too rare to keep. */
  other: number;
  /** Values never counted in a category: null, undefined, NaN, ±Infinity. */
  invalid: number;
}

/**
 * The categories to track, from reference values: by count descending, then name ascending (so
 * the order is deterministic), at most maxCategories of them. The rest of the reference falls
 * into the "other" bucket along with any category the reference never had.
 */
export function referenceCategories(values: Iterable<CategoryValue>, maxCategories = Infinity): string[] {
  const counts = new Map<string, number>();
  for (const value of values) {
    const key = categoryKey(value);
    if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return mostFrequent(counts, maxCategories);
}

/** The categories of a count table, most frequent first (ties by name), at most maxCategories. */
export function mostFrequent(counts: ReadonlyMap<string, number>, maxCategories = Infinity): string[] {
  return [...counts.entries()]
    .sort(
      ([leftName, leftCount], [rightName, rightCount]) =>
        rightCount - leftCount || (leftName < rightName ? -1 : leftName > rightName ? 1 : 0),
    )
    .slice(0, maxCategories)
    .map(([name]) => name);
}

/** An empty table over categories (distinct strings). */
export function createCategoryCounts(categories: readonly string[]): CategoryCounts {
  if (new Set(categories).size !== categories.length) throw new RangeError('categories must be distinct');
  return { categories: [...categories], counts: new Array<number>(categories.length).fill(0), other: 0, invalid: 0 };
}

const categoryIndexes = new WeakMap<readonly string[], ReadonlyMap<string, number>>();

/** Index of each category, built once per categories array (also for a table restored from JSON). */
function indexOf(categories: readonly string[]): ReadonlyMap<string, number> {
  let index = categoryIndexes.get(categories);
  if (!index) {
    index = new Map(categories.map((category, position) => [category, position]));
    categoryIndexes.set(categories, index);
  }
  return index;
}

/**
 * Counts one value: in its category, in other when the reference did not keep it, or in invalid
 * (null, undefined, NaN, ±Infinity). O(1). Returns whether it was a valid value.
 */
export function addCategory(table: CategoryCounts, value: CategoryValue): boolean {
  const key = categoryKey(value);
  if (key === undefined) {
    table.invalid++;
    return false;
  }
  const position = indexOf(table.categories).get(key);
  if (position === undefined) table.other++;
  else table.counts[position] = (table.counts[position] ?? 0) + 1;
  return true;
}

/** A new table holding both tables' counts; they must track the same categories in the same order. */
export function mergeCategoryCounts(left: CategoryCounts, right: CategoryCounts): CategoryCounts {
  if (
    left.categories.length !== right.categories.length ||
    left.categories.some((category, index) => category !== right.categories[index])
  ) {
    throw new RangeError('cannot merge category counts over different categories');
  }
  return {
    categories: [...left.categories],
    counts: left.counts.map((count, index) => count + (right.counts[index] ?? 0)),
    other: left.other + right.other,
    invalid: left.invalid + right.invalid,
  };
}

/** The table as one count vector for psi, chiSquare and jensenShannon: its categories' counts, then other. */
export function categoryVector(table: CategoryCounts): number[] {
  return [...table.counts, table.other];
}

/** A value's category: its string form; undefined for null, undefined, NaN and ±Infinity (invalid). */
export function categoryKey(value: CategoryValue): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'number' && !Number.isFinite(value)) return undefined;
  return String(value);
}
