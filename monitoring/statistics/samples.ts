/**
 * The valid part of a raw sample: its finite values in ascending order (as a Float64Array, -0
 * stored as 0) and how many entries were left out as invalid (NaN, ±Infinity, null, undefined).
 * O(n log n).
 */
export function finiteSorted(sample: ArrayLike<number | null | undefined>): { readonly values: Float64Array; readonly invalid: number } {
  const values = new Float64Array(sample.length);
  let count = 0;
  for (let index = 0; index < sample.length; index++) {
    const value = sample[index];
    if (typeof value === 'number' && Number.isFinite(value)) values[count++] = value === 0 ? 0 : value;
  }
  return { values: values.subarray(0, count).sort(), invalid: sample.length - count };
}
