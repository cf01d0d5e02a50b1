import { describe, expect, it } from 'vitest';
import { uniformRandom } from '../../common/random.js';
import { finiteSorted, radixSortFinite } from './samples.js';

/** Values whose bit patterns reach every digit: signs, zeros, subnormals, the extremes, ties. */
const shapes: readonly [string, (random: () => number) => number][] = [
  ['uniform around 0', (random) => random() * 100 - 50],
  ['30 decades', (random) => Math.exp(69 * (random() - 0.5))],
  ['small integers with ties', (random) => Math.floor(random() * 20) - 10],
  ['subnormal', (random) => (random() - 0.5) * 1e-310],
  [
    'mixed extremes',
    (random) => {
      const u = random();
      if (u < 0.1) return 0;
      if (u < 0.2) return -Number.MAX_VALUE * random();
      if (u < 0.25) return Number.MIN_VALUE;
      if (u < 0.3) return Number.MAX_VALUE;
      return (random() - 0.5) * 1e300;
    },
  ],
];

describe('radixSortFinite', () => {
  it.each(shapes)('orders %s exactly as the native sort does', (_name, shape) => {
    const random = uniformRandom(11);
    for (const size of [0, 1, 2, 3, 100, 5_000, 60_000]) {
      const values = Float64Array.from({ length: size }, () => {
        const value = shape(random);
        return value === 0 ? 0 : value;
      });
      const expected = values.slice().sort();
      radixSortFinite(values);
      expect(Buffer.from(values.buffer).equals(Buffer.from(expected.buffer)), `${size} values`).toBe(true);
    }
  });

  it('sorts a view in place without touching the rest of its buffer', () => {
    const backing = Float64Array.from([9, 3, 2, 1, -7]);
    radixSortFinite(backing.subarray(1, 4));
    expect([...backing]).toEqual([9, 1, 2, 3, -7]);
  });
});

describe('finiteSorted', () => {
  it('keeps the finite values in order, stores -0 as 0 and counts the rest as invalid, on both sides of the radix threshold', () => {
    for (const size of [50, 10_000]) {
      const random = uniformRandom(size);
      const sample: (number | null | undefined)[] = Array.from({ length: size }, () => (random() - 0.5) * 1e6);
      sample.push(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, null, undefined, -0);
      const { values, invalid } = finiteSorted(sample);
      expect(invalid).toBe(5);
      expect(values.length).toBe(size + 1);
      expect(Object.is(values[values.findIndex((value) => value === 0)], 0)).toBe(true);
      for (let index = 1; index < values.length; index++) expect(values[index - 1]).toBeLessThanOrEqual(values[index] ?? 0);
    }
  });
});
