import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../common/random.js';
import { ExactSum, exactSpread, addSquare, spreadOf, squaresExactly, exactInteger, roundedInteger } from './exact-sum.js';

/** A seeded generator (common/random), so that a failure can be replayed from its seed. */
function random(seed: number): () => number {
  const generator = seededRandom(seed);
  return () => generator.next();
}

/** A finite double as an exact integer multiple of 2^-1074. */
function exact(value: number): bigint {
  let bits = 0;
  let mantissa = Math.abs(value);
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2;
    bits++;
  }
  const integer = BigInt(mantissa) << BigInt(1074 - bits);
  return value < 0 ? -integer : integer;
}

/** `integer` × 2^`exponent` rounded once to the nearest double, ties to even (±Infinity beyond the range). */
function rounded(integer: bigint, exponent = -1074): number {
  if (integer === 0n) return 0;
  const negative = integer < 0n;
  let magnitude = negative ? -integer : integer;
  let shift = Math.max(0, magnitude.toString(2).length - 64);
  if (shift > 0) {
    const rest = magnitude & ((1n << BigInt(shift)) - 1n);
    magnitude >>= BigInt(shift);
    if (rest !== 0n) magnitude |= 1n;
  }
  let value = Number(magnitude);
  for (shift += exponent; shift !== 0;) {
    const step = Math.max(-1000, Math.min(1000, shift));
    value *= 2 ** step;
    shift -= step;
  }
  return negative ? -value : value;
}

function sumOf(values: readonly number[]): number {
  const sum = new ExactSum();
  for (const value of values) sum.add(value);
  return sum.value();
}

describe('ExactSum', () => {
  it('rounds the exact sum once, whatever the order', () => {
    expect(sumOf([1e16, 1, -1e16])).toBe(1);
    expect(sumOf(Array.from({ length: 10 }, () => 0.1))).toBe(1);
    expect(0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1).not.toBe(1);
    // Halfway between two doubles, and a part far below that decides the way: up.
    expect(sumOf([1, 2 ** -53, 2 ** -160])).toBe(1 + 2 ** -52);
    expect(sumOf([1, 2 ** -53])).toBe(1);
    expect(sumOf([1, 2 ** -53, -(2 ** -160)])).toBe(1);
    expect(Object.is(sumOf([]), 0)).toBe(true);
    expect(Object.is(sumOf([-0, -0]), 0)).toBe(true);
    expect(Object.is(sumOf([1, -1]), 0)).toBe(true);
  });

  it('takes values away exactly: after adding and taking away, the rest is summed as if alone', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const next = random(seed);
      const sum = new ExactSum();
      const held: number[] = [];
      let reference = 0n;
      for (let step = 0; step < 400; step++) {
        if (held.length > 0 && next() < 0.45) {
          const leaving = held.shift() as number;
          sum.add(-leaving);
          reference -= exact(leaving);
        } else {
          // Values across many magnitudes, signs and cancellations, and some beyond 2^960.
          const roll = next();
          const magnitude = roll < 0.05 ? 2 ** (960 + Math.floor(next() * 63)) : 2 ** Math.floor(next() * 120 - 60);
          const value = (next() - 0.5) * magnitude;
          held.push(value);
          sum.add(value);
          reference += exact(value);
        }
        expect(sum.value(), `seed ${seed}, step ${step}`).toBe(rounded(reference));
      }
    }
  });

  it('never overflows midway: only a sum beyond the range is infinite', () => {
    const max = Number.MAX_VALUE;
    expect(sumOf([max, max, -max])).toBe(max);
    expect(sumOf([max, max])).toBe(Number.POSITIVE_INFINITY);
    expect(sumOf([-max, -max, max, 1])).toBe(-max);
    // A huge value and a tiny one that decides the rounding: 2^1000 + 2^947 is halfway, 5e-324 tips it up.
    expect(sumOf([2 ** 1000, 2 ** 947, 5e-324])).toBe(2 ** 1000 + 2 ** 948);
    expect(sumOf([2 ** 1000, 2 ** 947])).toBe(2 ** 1000);
    expect(sumOf([2 ** 961, -(2 ** 960), -(2 ** 960) + 2 ** 908, 5e-324])).toBe(2 ** 908);
    expect(sumOf([2 ** 961, -(2 ** 960), -(2 ** 960), 5e-324])).toBe(5e-324);
  });
});

describe('exactSpread', () => {
  function spread(values: readonly number[]): number {
    const sum = new ExactSum();
    const squares = new ExactSum();
    for (const value of values) {
      sum.add(value);
      addSquare(squares, value, 1);
    }
    return exactSpread(values.length, sum, squares);
  }

  it('has none of the cancellation of Σx²/n − mean²', () => {
    const values = [1e9 + 1, 1e9 + 2, 1e9 + 3];
    expect(spread(values)).toBe(Math.sqrt(2 / 3));
    const naive = Math.sqrt(values.reduce((total, value) => total + value * value, 0) / 3 - ((3e9 + 6) / 3) ** 2);
    expect(naive).not.toBe(Math.sqrt(2 / 3));
    expect(spread([5])).toBe(0);
    expect(spread([2, 4, 4, 4, 5, 5, 7, 9])).toBe(2);
  });

  it('equals √(round(n·Σx² − (Σx)²) / n²) computed in exact arithmetic, values taken away included', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed * 31);
      const sum = new ExactSum();
      const squares = new ExactSum();
      const held: number[] = [];
      for (let step = 0; step < 300; step++) {
        if (held.length > 1 && next() < 0.4) {
          const leaving = held.shift() as number;
          sum.add(-leaving);
          addSquare(squares, leaving, -1);
        } else {
          const value = (next() - 0.3) * 2 ** Math.floor(next() * 80 - 40) + 1e6;
          held.push(value);
          sum.add(value);
          addSquare(squares, value, 1);
        }
        const count = BigInt(held.length);
        const total = held.reduce((all, value) => all + exact(value), 0n);
        const squared = held.reduce((all, value) => all + exact(value) ** 2n, 0n);
        const difference = rounded(count * squared - total * total, -2148);
        const expected = Math.sqrt(difference / (held.length * held.length));
        expect(exactSpread(held.length, sum, squares), `seed ${seed}, step ${step}`).toBe(expected);
      }
    }
  });

  it('spreadOf, in big integers, gives the same bits where the sums of squares apply, and a finite value beyond them', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed * 131);
      const values = Array.from({ length: 1 + Math.floor(next() * 50) }, () => (next() - 0.4) * 2 ** Math.floor(next() * 200 - 100));
      expect(values.every(squaresExactly)).toBe(true);
      expect(spreadOf(values), `seed ${seed}`).toBe(spread(values));
    }
    expect(squaresExactly(1e300)).toBe(false);
    expect(squaresExactly(1e-160)).toBe(false);
    expect(spreadOf([1e300, 2e300])).toBe(5e299);
    expect(spreadOf([1e-160, 3e-160])).toBe(1e-160);
    expect(spreadOf([-Number.MAX_VALUE, Number.MAX_VALUE])).toBe(Number.MAX_VALUE);
  });
});

describe('exact integers', () => {
  it('turn doubles into multiples of 2^-1074 and back, subnormals included', () => {
    for (const value of [0, 1, -1, 0.1, 5e-324, -5e-324, 2 ** -1022, 1.5 * 2 ** -1030, Number.MAX_VALUE, -123.456])
      expect(roundedInteger(exactInteger(value), -1074)).toBe(value);
    expect(exactInteger(5e-324)).toBe(1n);
    expect(exactInteger(1)).toBe(1n << 1074n);
  });
});
