/**
 * An exact running sum of doubles: values can be added and taken away again in any order, and the
 * sum read at any time is the members' exact sum rounded once (to nearest, ties to even). It is
 * therefore a function of the multiset of values alone, whatever the order or the path: a window
 * that slides (adding newcomers, taking away leavers), one computed in a single pass, a replay and
 * a history read back after an eviction all give the same bits.
 *
 * The sum is kept as Shewchuk's non-overlapping partials (the algorithm of Python's `math.fsum`):
 * a few doubles, smallest first, whose exact sum is the running sum. Values of magnitude at or
 * beyond 2^960 are kept apart, scaled by 2^-64 (exact for them), so that no partial can overflow
 * however the values come and go; a sum holding such values is read in exact integer arithmetic.
 */
const HUGE = 2 ** 960;
const DOWN = 2 ** -64;

export class ExactSum {
  /** The partials of the values below 2^960: `partials[0..size)` (see `addPartial`). */
  private readonly partials: number[] = [];
  private size = 0;
  /** Those of the values of 2^960 or more, scaled by 2^-64: `huge[0..hugeSize)`; none until one comes. */
  private huge: number[] | undefined;
  private hugeSize = 0;

  /** Adds a finite value (taking one away is adding its negation). */
  add(value: number): void {
    if (value === 0) return;
    if (Math.abs(value) < HUGE) this.size = addPartial(this.partials, this.size, value);
    else this.hugeSize = addPartial((this.huge ??= []), this.hugeSize, value * DOWN);
  }

  /** The exact sum, rounded once; 0 for none (never -0), ±Infinity beyond the range of doubles. */
  value(): number {
    if (!this.hasHuge()) return rounded(this.partials, this.size);
    let total = 0n;
    for (let index = 0; index < this.hugeSize; index++) total += exactInteger((this.huge as number[])[index] as number) << 64n;
    for (let index = 0; index < this.size; index++) total += exactInteger(this.partials[index] as number);
    return roundedInteger(total, -1074);
  }

  /**
   * How many partials the values below 2^960 have (all of the values unless `hasHuge`), and one of
   * them by its place: smallest first.
   */
  partCount(): number {
    return this.size;
  }

  part(index: number): number {
    return this.partials[index] as number;
  }

  /** Back to the empty sum (its arrays kept for the next values). */
  clear(): void {
    this.size = 0;
    this.hugeSize = 0;
  }

  /** Whether values of magnitude 2^960 or more are in the sum (and did not cancel out). */
  hasHuge(): boolean {
    return this.hugeSize > 0;
  }
}

/**
 * Adds `value` to non-overlapping partials `partials[0..size)`, smallest first, keeping their exact
 * sum (Shewchuk); returns their new count. The array is never shortened: setting an array's length
 * is a call into the runtime, and the entries past the count are simply not read.
 */
function addPartial(partials: number[], size: number, value: number): number {
  let x = value;
  let kept = 0;
  for (let index = 0; index < size; index++) {
    let y = partials[index] as number;
    if (Math.abs(x) < Math.abs(y)) {
      const swap = x;
      x = y;
      y = swap;
    }
    const high = x + y;
    const low = y - (high - x);
    if (low !== 0) partials[kept++] = low;
    x = high;
  }
  if (x !== 0) partials[kept++] = x;
  return kept;
}

/** The exact sum of non-overlapping partials (smallest first), correctly rounded (as `math.fsum`). */
export function rounded(partials: readonly number[], size = partials.length): number {
  let index = size;
  if (index === 0) return 0;
  let high = partials[--index] as number;
  let low = 0;
  while (index > 0) {
    const x = high;
    const y = partials[--index] as number;
    high = x + y;
    low = y - (high - x);
    if (low !== 0) break;
  }
  // Halfway cases: the partials below decide whether `low` rounds up or down.
  if (index > 0) {
    const below = partials[index - 1] as number;
    if ((low < 0 && below < 0) || (low > 0 && below > 0)) {
      const twice = low * 2;
      const candidate = high + twice;
      if (twice === candidate - high) high = candidate;
    }
  }
  return high;
}

const SPLITTER = 134_217_729; // 2^27 + 1

/**
 * The rounding error of `product = a × b`: `product + error` is the exact product (Dekker's
 * algorithm; exact while |a| and |b| are below 2^996, the product does not overflow and the error
 * is not below 2^-1022).
 */
export function productError(a: number, b: number, product: number): number {
  const scaledA = SPLITTER * a;
  const highA = scaledA - (scaledA - a);
  const lowA = a - highA;
  const scaledB = SPLITTER * b;
  const highB = scaledB - (scaledB - b);
  const lowB = b - highB;
  return highA * highB - product + highA * lowB + lowA * highB + lowA * lowB;
}

/**
 * Whether a value's square joins an exact sum of squares (see `exactSpread`): 0, or a magnitude in
 * [2^-430, 2^400), where every product `exactSpread` forms is exact and nothing overflows.
 */
export function squaresExactly(value: number): boolean {
  const magnitude = Math.abs(value);
  return magnitude === 0 || (magnitude >= 2 ** -430 && magnitude < 2 ** 400);
}

/** Adds `value`² exactly (as two terms) to `squares`, or takes it away with `sign` −1. */
export function addSquare(squares: ExactSum, value: number, sign: 1 | -1): void {
  const square = value * value;
  squares.add(sign * square);
  squares.add(sign * productError(value, value, square));
}

/**
 * The population standard deviation of `count` values from their exact sum and exact sum of
 * squares: √(round(n·Σx² − (Σx)²) / n²), where the difference is computed exactly (every product
 * of partials split into two terms) and rounded once. Every value must pass `squaresExactly`; the
 * result is a function of the values alone, equal to `spreadOf` theirs, and has none of the
 * cancellation of Σx²/n − mean².
 */
export function exactSpread(count: number, sum: ExactSum, squares: ExactSum): number {
  // One scratch sum for every call (a call runs to its end before the next starts): a window's
  // stddev is read for every event, and a fresh sum each time was garbage each time.
  const difference = spreadScratch;
  difference.clear();
  for (let index = 0; index < squares.partCount(); index++) {
    const part = squares.part(index);
    const product = count * part;
    difference.add(product);
    difference.add(productError(count, part, product));
  }
  const parts = sum.partCount();
  for (let outer = 0; outer < parts; outer++) {
    const left = sum.part(outer);
    for (let inner = 0; inner < parts; inner++) {
      const right = sum.part(inner);
      const product = left * right;
      difference.add(-product);
      difference.add(-productError(left, right, product));
    }
  }
  const variance = Math.max(0, difference.value()) / (count * count);
  return Math.sqrt(variance);
}

const spreadScratch = new ExactSum();

/**
 * `exactSpread` of any finite values, in exact integer arithmetic: √(round(n·Σx² − (Σx)²) / n²),
 * the difference rounded to 53 bits and scaled by a power of two so that no step overflows or
 * falls below the normal range; where `exactSpread` applies, the same bits. It costs a pass over
 * the values (big integers): windows holding a value `squaresExactly` refuses take it.
 */
export function spreadOf(values: readonly number[]): number {
  const count = values.length;
  let sum = 0n;
  let squares = 0n;
  for (const value of values) {
    const integer = exactInteger(value);
    sum += integer;
    squares += integer * integer;
  }
  // n·Σx² − (Σx)² over 2^2148, as a 53-bit `rounded` times 2^`exponent` (an even exponent).
  const difference = BigInt(count) * squares - sum * sum;
  if (difference <= 0n) return 0;
  const { leading, exponent: shift } = leadingBits(difference);
  let rounded = Number(leading);
  let exponent = shift - 2148;
  if (exponent % 2 !== 0) {
    rounded *= 2;
    exponent -= 1;
  }
  return scaled(Math.sqrt(rounded / (count * count)), exponent / 2);
}

const bits = new Float64Array(1);
const words = new BigUint64Array(bits.buffer);

/** A finite double as an integer multiple of 2^-1074, exactly. */
export function exactInteger(value: number): bigint {
  bits[0] = value;
  const word = words[0] as bigint;
  const biased = Number((word >> 52n) & 0x7ffn);
  const fraction = word & 0xf_ffff_ffff_ffffn;
  const integer = biased === 0 ? fraction : (fraction | 0x10_0000_0000_0000n) << BigInt(biased - 1);
  return value < 0 ? -integer : integer;
}

/** `integer` × 2^`exponent` rounded once to the nearest double, ties to even (±Infinity beyond the range). */
export function roundedInteger(integer: bigint, exponent: number): number {
  if (integer === 0n) return 0;
  const negative = integer < 0n;
  const magnitude = negative ? -integer : integer;
  // Below 2^53 units of 2^-1074 the value is exactly a double (subnormal or not).
  if (exponent === -1074 && magnitude < 2n ** 53n) return (negative ? -1 : 1) * Number(magnitude) * 2 ** -1074;
  const { leading, exponent: shift } = leadingBits(magnitude);
  const value = scaled(Number(leading), shift + exponent);
  return negative ? -value : value;
}

/**
 * A positive integer's leading 64 bits as `leading` × 2^`exponent`, the lowest bit set when any bit
 * below was (sticky): `Number(leading)` then rounds to 53 bits as the whole integer would.
 */
function leadingBits(integer: bigint): { leading: bigint; exponent: number } {
  const shift = Math.max(0, integer.toString(2).length - 64);
  if (shift === 0) return { leading: integer, exponent: 0 };
  const rest = integer & ((1n << BigInt(shift)) - 1n);
  return { leading: (integer >> BigInt(shift)) | (rest === 0n ? 0n : 1n), exponent: shift };
}

/** `value` × 2^`exponent` in steps that stay within the range of doubles. */
function scaled(value: number, exponent: number): number {
  let result = value;
  for (let left = exponent; left !== 0;) {
    const step = Math.max(-1000, Math.min(1000, left));
    result *= 2 ** step;
    left -= step;
  }
  return result;
}
