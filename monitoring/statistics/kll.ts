import { randomState, randomStep } from '../../common/random.js';

/**
 * KLL quantile sketch (Karnin, Lang & Liberty, "Optimal Quantile Approximation in Streams", 2016):
 * a stack of compactors; level h holds items that each stand for 2^h input values. When the sketch
 * holds more than its capacity, the lowest full level is sorted and every other item (odd or even
 * positions, by a coin flip) moves up a level, the rest are dropped. Capacities shrink by 2/3 per
 * level below the top (which holds k), never below 8, so the sketch keeps at most about 3k + 8·L
 * items for L ≈ log2(n/k) levels: memory is O(k + log n), independent of traffic beyond that.
 *
 * Deterministic: the coin flips come from a seeded generator whose state is part of the sketch's
 * state, so the same seed and the same input give a bit-identical sketch, and a sketch stored
 * (toState/toBuffer) and restored continues exactly as if it had never been stored.
 */

export const DEFAULT_KLL_K = 200;
const MIN_K = 8;
const MAX_K = 65_535;
/** KLL's m: no level is ever narrower than this. */
const MIN_LEVEL_CAPACITY = 8;
/** Levels up to this many items are sorted by insertion sort when compacted (see sortLevel). */
const INSERTION_SORT_MAX = 48;
const BUFFER_MAGIC = 0x314c4c4b; // 'KLL1' little-endian
const BUFFER_HEADER_BYTES = 4 * 4 + 4 * 8;

/**
 * The sketch's normalized rank error for accuracy parameter k: ε(k) = 2.446 / k^0.9433
 * (1.65% at k = 200, 0.88% at k = 400, 3.1% at k = 100). This is the empirical 99%-confidence
 * bound Apache DataSketches publishes for its KLL sketch with the same design (capacity ratio 2/3,
 * minimum width 8, random offset per compaction), in its double-sided form: with probability about
 * 0.99, |rank(x) - true rank(x)| ≤ ε(k) for every x at once. It is a high-probability bound, not a
 * guarantee; kll.test.ts checks it empirically on 100,000-value streams (sequential, sorted and
 * merged). Merging sketches of the same k keeps the bound.
 */
export function kllRankErrorBound(k: number): number {
  return 2.446 / k ** 0.9433;
}

export interface KllOptions {
  /** Accuracy/size parameter, an integer in [8, 65535]; default 200. */
  readonly k?: number;
  /** Seeds the compaction coin flips (integer part mod 2^32); default 0. */
  readonly seed?: number;
}

/** The sketch as a JSON-able object (no Infinity, no NaN). */
export interface KllSketchState {
  readonly version: 1;
  readonly k: number;
  /** Valid values added. */
  readonly count: number;
  /** Values refused: NaN, ±Infinity, null, undefined. */
  readonly invalid: number;
  /** Exact extremes of the valid values; null while the sketch is empty. */
  readonly min: number | null;
  readonly max: number | null;
  /** The coin-flip generator's state. */
  readonly random: number;
  /** levels[h]: the items of weight 2^h, in the order the sketch holds them. */
  readonly levels: readonly (readonly number[])[];
}

/** The sketch's estimated CDF as a step function. */
export interface CdfPoints {
  /** Distinct retained values, ascending. */
  readonly values: Float64Array;
  /** ranks[i]: estimated fraction of the values ≤ values[i]; the last is 1. */
  readonly ranks: Float64Array;
}

/** One level's items: the first `length` slots of a growable Float64Array (no per-item boxing, no reallocation on every compaction). */
interface Level {
  items: Float64Array;
  length: number;
}

function emptyLevel(): Level {
  return { items: new Float64Array(16), length: 0 };
}

/** Makes room for `more` items after the level's current ones. */
function reserve(level: Level, more: number): void {
  const needed = level.length + more;
  if (needed <= level.items.length) return;
  const grown = new Float64Array(Math.max(needed, 2 * level.items.length));
  grown.set(level.items.subarray(0, level.length));
  level.items = grown;
}

function levelOf(items: readonly number[]): Level {
  const level = emptyLevel();
  reserve(level, items.length);
  level.items.set(items);
  level.length = items.length;
  return level;
}

interface SortedView {
  readonly values: Float64Array;
  /** Total weight of the retained items ≤ values[i]. */
  readonly cumulative: Float64Array;
}

export class KllSketch {
  readonly k: number;
  private readonly levels: Level[];
  /** levels[0], kept as a field for the hot path of add. */
  private readonly bottom: Level;
  private capacities: number[];
  private capacityTotal: number;
  private retained = 0;
  private valid = 0;
  private invalid = 0;
  private minimum = Infinity;
  private maximum = -Infinity;
  private random: number;
  private view: SortedView | undefined;

  constructor(options: KllOptions = {}) {
    const k = options.k ?? DEFAULT_KLL_K;
    if (!Number.isInteger(k) || k < MIN_K || k > MAX_K) throw new RangeError(`KLL k must be an integer in [${MIN_K}, ${MAX_K}], got ${k}`);
    this.k = k;
    this.bottom = emptyLevel();
    this.levels = [this.bottom];
    this.capacities = levelCapacities(k, 1);
    this.capacityTotal = sum(this.capacities);
    this.random = randomState(options.seed ?? 0);
  }

  /**
   * Adds one value. Amortized O(log k) (the occasional sort of a level, spread over the values it
   * absorbed): a constant for a fixed k, about 0.1 µs per value at k = 200. NaN, ±Infinity,
   * null and undefined are not inserted: they are counted in invalidCount and false is returned.
   * -0 is stored as 0.
   */
  add(value: number | null | undefined): boolean {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.invalid++;
      return false;
    }
    const item = value === 0 ? 0 : value;
    const bottom = this.bottom;
    if (bottom.length === bottom.items.length) reserve(bottom, 1);
    bottom.items[bottom.length++] = item;
    this.valid++;
    this.retained++;
    if (item < this.minimum) this.minimum = item;
    if (item > this.maximum) this.maximum = item;
    this.view = undefined;
    if (this.retained > this.capacityTotal) this.compress();
    return true;
  }

  /**
   * Folds other into this sketch (other is unchanged) and returns this. Both must have the same k.
   * The result estimates the union of both inputs with the same error bound. Uses this sketch's
   * generator, so merging is deterministic too.
   */
  merge(other: KllSketch): this {
    if (other.k !== this.k) throw new RangeError(`cannot merge KLL sketches with k ${this.k} and ${other.k}`);
    const source = other === this ? other.clone() : other;
    this.invalid += source.invalid;
    if (source.valid === 0) return this;
    while (this.levels.length < source.levels.length) this.levels.push(emptyLevel());
    this.capacities = levelCapacities(this.k, this.levels.length);
    this.capacityTotal = sum(this.capacities);
    source.levels.forEach((level, height) => {
      const target = this.levels[height];
      if (!target) return;
      reserve(target, level.length);
      target.items.set(level.items.subarray(0, level.length), target.length);
      target.length += level.length;
    });
    this.valid += source.valid;
    this.retained += source.retained;
    this.minimum = Math.min(this.minimum, source.minimum);
    this.maximum = Math.max(this.maximum, source.maximum);
    this.view = undefined;
    this.compress();
    return this;
  }

  /** Valid values added (merged ones included). */
  get count(): number {
    return this.valid;
  }

  /** Values refused by add (NaN, ±Infinity, null, undefined), merged ones included. */
  get invalidCount(): number {
    return this.invalid;
  }

  /** Exact smallest valid value; undefined while empty. */
  get min(): number | undefined {
    return this.valid === 0 ? undefined : this.minimum;
  }

  /** Exact largest valid value; undefined while empty. */
  get max(): number | undefined {
    return this.valid === 0 ? undefined : this.maximum;
  }

  /** Items held now (memory is about 8 bytes each). */
  get retainedCount(): number {
    return this.retained;
  }

  /** True while nothing has been compacted: every value is held and all answers are exact. */
  get isExact(): boolean {
    return this.retained === this.valid;
  }

  /** The normalized rank error of this sketch's answers: 0 while exact, else kllRankErrorBound(k). */
  get rankErrorBound(): number {
    return this.isExact ? 0 : kllRankErrorBound(this.k);
  }

  /**
   * The q-quantile, q in [0, 1]: the smallest retained value v with estimated rank(v) ≥ q (the
   * inverse of the CDF; numpy's method='inverted_cdf' while the sketch is exact). q = 0 and q = 1
   * give the exact min and max. Error: the returned value's true rank is within rankErrorBound of q.
   * undefined while empty; RangeError for q outside [0, 1].
   */
  quantile(q: number): number | undefined {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile needs q in [0, 1], got ${q}`);
    if (this.valid === 0) return undefined;
    if (q === 0) return this.minimum;
    if (q === 1) return this.maximum;
    const { values, cumulative } = this.sortedView();
    const target = q * this.valid;
    let low = 0;
    let high = values.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((cumulative[middle] ?? 0) >= target) high = middle;
      else low = middle + 1;
    }
    return values[low];
  }

  /**
   * Normalized rank of x: the estimated fraction of valid values ≤ x (the empirical CDF at x),
   * within rankErrorBound of the true fraction. undefined while empty; RangeError for NaN.
   */
  rank(x: number): number | undefined {
    if (Number.isNaN(x)) throw new RangeError('rank of NaN');
    if (this.valid === 0) return undefined;
    const { values, cumulative } = this.sortedView();
    const index = lastAtMost(values, x);
    return index < 0 ? 0 : (cumulative[index] ?? 0) / this.valid;
  }

  /** The estimated CDF's steps, for KS and Wasserstein distances (fresh arrays; empty while empty). */
  cdfPoints(): CdfPoints {
    const { values, cumulative } = this.sortedView();
    const ranks = new Float64Array(cumulative.length);
    for (let index = 0; index < cumulative.length; index++) ranks[index] = (cumulative[index] ?? 0) / this.valid;
    if (ranks.length > 0) ranks[ranks.length - 1] = 1;
    return { values: values.slice(), ranks };
  }

  clone(): KllSketch {
    return KllSketch.fromState(this.toState());
  }

  toState(): KllSketchState {
    return {
      version: 1,
      k: this.k,
      count: this.valid,
      invalid: this.invalid,
      min: this.valid === 0 ? null : this.minimum,
      max: this.valid === 0 ? null : this.maximum,
      random: this.random,
      levels: this.levels.map((level) => Array.from(level.items.subarray(0, level.length))),
    };
  }

  /**
   * A sketch of values already sorted ascending (finite; -0 is stored as 0), built directly
   * instead of value by value: deterministic, O(k + log n) after the sort the caller did, and more
   * accurate than a streamed one. For n ≤ k every value is kept (exact). Otherwise the values are
   * cut into blocks of 2^H consecutive values, H the smallest height with at most k blocks, and
   * each block is kept once, at level H, as its middle value; the rest (fewer than 2^H values)
   * is cut by the binary digits of its length into one block per lower level. Each item's weight is
   * exactly the number of values it stands for, so every estimated rank is within 2^(H-1) of the
   * true one: a rank error of at most 1/(k+1), deterministic (a streamed sketch's is
   * kllRankErrorBound(k), about 0.9% at k = 400, with probability 0.99). rankErrorBound still
   * reports the streamed bound, which holds a fortiori. It is a valid sketch in every other way:
   * it can take more values and merges, with the usual bound from then on.
   */
  static fromSorted(sorted: Float64Array, options: KllOptions = {}): KllSketch {
    const sketch = new KllSketch(options);
    const count = sorted.length;
    if (count === 0) return sketch;
    for (let index = 1; index < count; index++)
      if (!((sorted[index - 1] ?? 0) <= (sorted[index] ?? 0))) throw new RangeError('KllSketch.fromSorted needs ascending finite values');
    const first = sorted[0] ?? 0;
    const last = sorted[count - 1] ?? 0;
    if (!Number.isFinite(first) || !Number.isFinite(last)) throw new RangeError('KllSketch.fromSorted needs ascending finite values');
    let height = 0;
    while (Math.floor(count / 2 ** height) > sketch.k) height++;
    const levels: number[][] = Array.from({ length: height + 1 }, () => []);
    const block = 2 ** height;
    const blocks = Math.floor(count / block);
    const middle = block >>> 1;
    for (let index = 0; index < blocks; index++) levels[height]?.push(sorted[index * block + middle] ?? 0);
    let position = blocks * block;
    for (let level = height - 1; level >= 0; level--) {
      const size = 2 ** level;
      if (count - position >= size) {
        levels[level]?.push(sorted[position + (size >>> 1)] ?? 0);
        position += size;
      }
    }
    const state: KllSketchState = {
      version: 1,
      k: sketch.k,
      count,
      invalid: 0,
      min: first === 0 ? 0 : first,
      max: last === 0 ? 0 : last,
      random: sketch.random,
      levels: levels.map((items) => items.map((item) => (item === 0 ? 0 : item))),
    };
    return KllSketch.fromState(state);
  }

  /**
   * Restores a sketch from toState's object or its JSON round trip (typed unknown: state read
   * back from a store is checked, not trusted); RangeError if it is malformed or inconsistent.
   */
  static fromState(input: unknown): KllSketch {
    const state = parseState(input);
    const sketch = new KllSketch({ k: state.k });
    let weight = 0;
    let retained = 0;
    state.levels.forEach((level, height) => {
      for (const item of level)
        if (state.min !== null && state.max !== null && (item < state.min || item > state.max))
          throw new RangeError('KLL state holds an item outside [min, max]');
      if (height === 0) {
        reserve(sketch.bottom, level.length);
        sketch.bottom.items.set(level);
        sketch.bottom.length = level.length;
      } else sketch.levels.push(levelOf(level));
      weight += level.length * 2 ** height;
      retained += level.length;
    });
    if (weight !== state.count) throw new RangeError(`KLL state weights sum to ${weight}, not its count ${state.count}`);
    sketch.capacities = levelCapacities(sketch.k, sketch.levels.length);
    sketch.capacityTotal = sum(sketch.capacities);
    sketch.retained = retained;
    sketch.valid = state.count;
    sketch.invalid = state.invalid;
    sketch.minimum = state.min ?? Infinity;
    sketch.maximum = state.max ?? -Infinity;
    sketch.random = state.random;
    return sketch;
  }

  /**
   * A compact binary form, little-endian: 'KLL1', k, random state and level count (u32 each),
   * count, invalid, min and max (f64 each; ±Infinity while empty), each level's length (u32), then
   * every item (f64), level by level: 48 + 4·levels + 8·retained bytes.
   */
  toBuffer(): Buffer {
    const buffer = Buffer.alloc(BUFFER_HEADER_BYTES + 4 * this.levels.length + 8 * this.retained);
    let offset = buffer.writeUInt32LE(BUFFER_MAGIC, 0);
    offset = buffer.writeUInt32LE(this.k, offset);
    offset = buffer.writeUInt32LE(this.random, offset);
    offset = buffer.writeUInt32LE(this.levels.length, offset);
    offset = buffer.writeDoubleLE(this.valid, offset);
    offset = buffer.writeDoubleLE(this.invalid, offset);
    offset = buffer.writeDoubleLE(this.minimum, offset);
    offset = buffer.writeDoubleLE(this.maximum, offset);
    for (const level of this.levels) offset = buffer.writeUInt32LE(level.length, offset);
    for (const level of this.levels)
      for (let index = 0; index < level.length; index++) offset = buffer.writeDoubleLE(level.items[index] ?? 0, offset);
    return buffer;
  }

  /** Restores a sketch from toBuffer's bytes; RangeError if they are truncated or inconsistent. */
  static fromBuffer(buffer: Uint8Array): KllSketch {
    const bytes = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    if (bytes.length < BUFFER_HEADER_BYTES || bytes.readUInt32LE(0) !== BUFFER_MAGIC) throw new RangeError('not a KLL sketch buffer');
    const k = bytes.readUInt32LE(4);
    const random = bytes.readUInt32LE(8);
    const levelCount = bytes.readUInt32LE(12);
    const count = bytes.readDoubleLE(16);
    const invalid = bytes.readDoubleLE(24);
    const min = bytes.readDoubleLE(32);
    const max = bytes.readDoubleLE(40);
    if (bytes.length < BUFFER_HEADER_BYTES + 4 * levelCount) throw new RangeError('truncated KLL sketch buffer');
    const lengths: number[] = [];
    for (let level = 0; level < levelCount; level++) lengths.push(bytes.readUInt32LE(BUFFER_HEADER_BYTES + 4 * level));
    let offset = BUFFER_HEADER_BYTES + 4 * levelCount;
    if (bytes.length !== offset + 8 * sum(lengths)) throw new RangeError('KLL sketch buffer has the wrong length');
    const levels = lengths.map((length) => {
      const items: number[] = [];
      for (let index = 0; index < length; index++, offset += 8) items.push(bytes.readDoubleLE(offset));
      return items;
    });
    const empty = count === 0;
    return KllSketch.fromState({ version: 1, k, count, invalid, min: empty ? null : min, max: empty ? null : max, random, levels });
  }

  /** Compacts the lowest full level until the sketch fits its capacity again. */
  private compress(): void {
    while (this.retained > this.capacityTotal) {
      // Retained items exceed the summed capacities, so some level is at or over its own.
      let height = 0;
      while (height < this.levels.length && (this.levels[height]?.length ?? 0) < (this.capacities[height] ?? 0)) height++;
      if (height === this.levels.length) throw new Error('KLL invariant broken: over capacity with no full level');
      this.compactLevel(height);
    }
  }

  private compactLevel(height: number): void {
    if (height + 1 === this.levels.length) {
      this.levels.push(emptyLevel());
      this.capacities = levelCapacities(this.k, this.levels.length);
      this.capacityTotal = sum(this.capacities);
    }
    const level = this.levels[height];
    const above = this.levels[height + 1];
    if (!level || !above) return;
    const { items, length } = level;
    sortLevel(items, length);
    const pairs = length >>> 1;
    const step = randomStep(this.random);
    this.random = step.state;
    reserve(above, pairs);
    const target = above.items;
    let next = above.length;
    for (let index = step.output >>> 31; index < 2 * pairs; index += 2) target[next++] = items[index] ?? 0;
    above.length = next;
    // An odd item out (the largest) stays at this level with its weight.
    if (length % 2 === 1) {
      items[0] = items[length - 1] ?? 0;
      level.length = 1;
    } else level.length = 0;
    this.retained -= pairs;
    this.view = undefined;
  }

  private sortedView(): SortedView {
    if (this.view) return this.view;
    const items = new Float64Array(this.retained);
    const weights = new Float64Array(this.retained);
    let position = 0;
    this.levels.forEach((level, height) => {
      const weight = 2 ** height;
      for (let index = 0; index < level.length; index++) {
        items[position] = level.items[index] ?? 0;
        weights[position] = weight;
        position++;
      }
    });
    const order = Array.from({ length: this.retained }, (_, index) => index).sort(
      (left, right) => (items[left] ?? 0) - (items[right] ?? 0),
    );
    const values: number[] = [];
    const cumulative: number[] = [];
    let running = 0;
    for (const index of order) {
      const item = items[index] ?? 0;
      running += weights[index] ?? 0;
      if (values.length > 0 && values[values.length - 1] === item) cumulative[cumulative.length - 1] = running;
      else {
        values.push(item);
        cumulative.push(running);
      }
    }
    this.view = { values: Float64Array.from(values), cumulative: Float64Array.from(cumulative) };
    return this.view;
  }
}

/** sortLevel's merge buffer, shared by every sketch (grown as needed; JavaScript runs one sort at a time). */
let mergeScratch = new Float64Array(256);
/** sortLevel's run boundaries. */
let runStarts = new Int32Array(64);

/**
 * Sorts a level's first `length` items ascending, in place, without garbage. A level above the
 * bottom is a concatenation of sorted runs (every compaction below appends its sorted half), so
 * its runs are merged pairwise: O(n log runs). The bottom level, in arrival order and a dozen or so
 * items when the sketch is full, gets insertion sort. Every item is finite and -0 is stored as 0,
 * so any correct sort gives the same array (and the same sketch) as the native sort would.
 */
function sortLevel(items: Float64Array, length: number): void {
  if (length <= INSERTION_SORT_MAX) {
    for (let index = 1; index < length; index++) {
      const item = items[index] ?? 0;
      let position = index;
      while (position > 0 && (items[position - 1] ?? 0) > item) {
        items[position] = items[position - 1] ?? 0;
        position--;
      }
      items[position] = item;
    }
    return;
  }
  if (runStarts.length < length + 1) runStarts = new Int32Array(2 * length + 2);
  let runs = 0;
  runStarts[runs++] = 0;
  for (let index = 1; index < length; index++) if ((items[index] ?? 0) < (items[index - 1] ?? 0)) runStarts[runs++] = index;
  if (runs === 1) return;
  runStarts[runs] = length;
  if (mergeScratch.length < length) mergeScratch = new Float64Array(2 * length);
  let source: Float64Array = items;
  let target: Float64Array = mergeScratch;
  while (runs > 1) {
    let merged = 0;
    for (let run = 0; run < runs; run += 2) {
      const start = runStarts[run] ?? 0;
      const middle = runStarts[run + 1] ?? length;
      const end = run + 2 <= runs ? (runStarts[run + 2] ?? length) : middle;
      let left = start;
      let right = middle;
      let out = start;
      while (left < middle && right < end) {
        const a = source[left] ?? 0;
        const b = source[right] ?? 0;
        if (b < a) {
          target[out++] = b;
          right++;
        } else {
          target[out++] = a;
          left++;
        }
      }
      while (left < middle) target[out++] = source[left++] ?? 0;
      while (right < end) target[out++] = source[right++] ?? 0;
      runStarts[merged++] = start;
    }
    runStarts[merged] = length;
    runs = merged;
    const swap = source;
    source = target;
    target = swap;
  }
  if (source !== items) items.set(source.subarray(0, length));
}

/**
 * Capacities for levelCount levels, bottom first: the top level holds k, each level below it
 * ⌈2/3⌉ of the one above, never below 8. Integer arithmetic only, so every platform agrees.
 */
function levelCapacities(k: number, levelCount: number): number[] {
  const capacities = new Array<number>(levelCount);
  let capacity = k;
  for (let height = levelCount - 1; height >= 0; height--) {
    capacities[height] = Math.max(MIN_LEVEL_CAPACITY, capacity);
    capacity = Math.ceil((2 * capacity) / 3);
  }
  return capacities;
}

/** Index of the last value ≤ x in an ascending array, -1 when there is none. */
function lastAtMost(values: Float64Array, x: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((values[middle] ?? 0) <= x) low = middle + 1;
    else high = middle;
  }
  return low - 1;
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

function parseState(input: unknown): KllSketchState {
  if (typeof input !== 'object' || input === null) throw new RangeError('KLL state must be an object');
  const { version, k, count, invalid, min, max, random, levels } = input as Partial<Record<keyof KllSketchState, unknown>>;
  if (version !== 1) throw new RangeError(`unknown KLL state version ${String(version)}`);
  if (typeof k !== 'number') throw new RangeError('KLL state k must be a number');
  const validCount = requireCount(count, 'count');
  const invalidCount = requireCount(invalid, 'invalid');
  if (typeof random !== 'number' || !Number.isInteger(random) || random < 0 || random > 0xffffffff)
    throw new RangeError(`invalid KLL random state ${String(random)}`);
  if (!Array.isArray(levels) || levels.length < 1) throw new RangeError('KLL state needs at least one level');
  const checkedLevels = (levels as unknown[]).map((level) => {
    if (!Array.isArray(level)) throw new RangeError('KLL state levels must be arrays');
    return (level as unknown[]).map((item) => {
      if (typeof item !== 'number' || !Number.isFinite(item)) throw new RangeError(`KLL state holds a non-finite item ${String(item)}`);
      return item;
    });
  });
  const empty = validCount === 0;
  const checkedMin = requireExtreme(min, empty, 'min');
  const checkedMax = requireExtreme(max, empty, 'max');
  return { version: 1, k, count: validCount, invalid: invalidCount, min: checkedMin, max: checkedMax, random, levels: checkedLevels };
}

function requireCount(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
    throw new RangeError(`KLL state ${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}

/** min/max: null exactly when the sketch is empty, else a finite number. */
function requireExtreme(value: unknown, empty: boolean, name: string): number | null {
  if (empty ? value === null : typeof value === 'number' && Number.isFinite(value)) return value as number | null;
  throw new RangeError(`KLL state ${name} ${String(value)} disagrees with its count`);
}
