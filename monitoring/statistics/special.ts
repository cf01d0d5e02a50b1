/**
 * Special functions behind the drift tests' p-values: log-gamma, the regularized upper incomplete
 * gamma function (chi-square tail), the limiting Kolmogorov distribution, the one-sided Smirnov and
 * two-sided Kolmogorov–Smirnov distributions for finite n, and the two-sample KS p-value with
 * scipy.stats.ks_2samp's semantics. Plain double-precision arithmetic, no dependencies.
 *
 * Which algorithm answers where follows scipy (Simard & L'Ecuyer's selection for the finite-n
 * Kolmogorov–Smirnov distribution), so values agree with scipy to far better than 1e-6 relative
 * wherever scipy is itself accurate; the tests check that against reference.json.
 */

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const SQRT_2PI = Math.sqrt(2 * Math.PI);
const PI_SQUARED = Math.PI * Math.PI;
/** log of the smallest normal double: exp() of anything below underflows (cephes MINLOG). */
const LOG_MIN = -708.3964185322641;
const MAX_ITERATIONS = 100_000;
const EPSILON = Number.EPSILON;
const TWO_POW_256 = 2 ** 256;
const TWO_POW_MINUS_256 = 2 ** -256;

// Lanczos approximation, g = 7, nine coefficients (Godfrey's published set).
const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/**
 * ln Γ(x) for real x (ln |Γ(x)| for negative non-integers; +Infinity at the poles 0, -1, -2, …).
 * Lanczos (g = 7) below 15 and the Stirling series above: absolute error below about 2e-15 for
 * x ≤ 15, relative error below about 1e-15 above.
 */
export function logGamma(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Infinity) return Infinity;
  if (x <= 0 && Number.isInteger(x)) return Infinity;
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  if (x >= 15) {
    const inverse = 1 / x;
    const inverseSquared = inverse * inverse;
    // Σ B_2j / (2j (2j-1) x^(2j-1)), j = 1..7, by Horner in 1/x².
    const series =
      inverse *
      (1 / 12 +
        inverseSquared *
          (-1 / 360 +
            inverseSquared *
              (1 / 1260 +
                inverseSquared * (-1 / 1680 + inverseSquared * (1 / 1188 + inverseSquared * (-691 / 360360 + inverseSquared / 156))))));
    return (x - 0.5) * Math.log(x) - x + LOG_SQRT_2PI + series;
  }
  const shifted = x - 1;
  let sum = LANCZOS_COEFFICIENTS[0] ?? 0;
  for (let index = 1; index < LANCZOS_COEFFICIENTS.length; index++) sum += (LANCZOS_COEFFICIENTS[index] ?? 0) / (shifted + index);
  const base = shifted + LANCZOS_G + 0.5;
  return LOG_SQRT_2PI + (shifted + 0.5) * Math.log(base) - base + Math.log(sum);
}

/**
 * The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x ≥ 0:
 * the power series of P = 1 - Q below x = a + 1 and a Lentz continued fraction for Q above.
 * Relative error about 1e-14 for moderate a, growing like 1e-16·a (the ln Γ(a) prefactor) for
 * large a. Throws RangeError for a ≤ 0 or x < 0.
 */
export function regularizedGammaQ(a: number, x: number): number {
  if (!(a > 0) || !Number.isFinite(a)) throw new RangeError(`regularizedGammaQ needs a finite a > 0, got ${a}`);
  if (!(x >= 0)) throw new RangeError(`regularizedGammaQ needs x ≥ 0, got ${x}`);
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  const logPrefactor = a * Math.log(x) - x - logGamma(a);
  if (x < a + 1) return clampProbability(1 - lowerGammaSeries(a, x, logPrefactor));
  return clampProbability(upperGammaFraction(a, x, logPrefactor));
}

/** P(a, x) = x^a e^-x / Γ(a) · Σ_k x^k / (a (a+1) … (a+k)). */
function lowerGammaSeries(a: number, x: number, logPrefactor: number): number {
  let term = 1 / a;
  let sum = term;
  for (let k = 1; k < MAX_ITERATIONS; k++) {
    term *= x / (a + k);
    sum += term;
    if (term < sum * EPSILON) break;
  }
  return sum * Math.exp(logPrefactor);
}

/** Q(a, x) = x^a e^-x / Γ(a) · 1 / (x+1-a - 1(1-a) / (x+3-a - 2(2-a) / (x+5-a - …))). */
function upperGammaFraction(a: number, x: number, logPrefactor: number): number {
  const tiny = 1e-300;
  let denominator = x + 1 - a;
  let numeratorRatio = 1 / tiny;
  let inverse = 1 / denominator;
  let fraction = inverse;
  for (let index = 1; index < MAX_ITERATIONS; index++) {
    const partial = -index * (index - a);
    denominator += 2;
    inverse = partial * inverse + denominator;
    if (Math.abs(inverse) < tiny) inverse = tiny;
    numeratorRatio = denominator + partial / numeratorRatio;
    if (Math.abs(numeratorRatio) < tiny) numeratorRatio = tiny;
    inverse = 1 / inverse;
    const factor = inverse * numeratorRatio;
    fraction *= factor;
    if (Math.abs(factor - 1) < EPSILON) break;
  }
  return Math.exp(logPrefactor) * fraction;
}

/**
 * Survival function of the chi-square distribution with dof degrees of freedom at x:
 * Q(dof/2, x/2) (scipy.stats.chi2.sf). Same error as regularizedGammaQ. dof must be > 0.
 */
export function chiSquareSf(x: number, dof: number): number {
  if (!(dof > 0)) throw new RangeError(`chiSquareSf needs dof > 0, got ${dof}`);
  if (Number.isNaN(x)) throw new RangeError('chiSquareSf got NaN');
  if (x <= 0) return 1;
  return regularizedGammaQ(dof / 2, x / 2);
}

/**
 * The limiting Kolmogorov distribution's survival function Q_KS(λ) = P(K > λ)
 * = 2 Σ_{k≥1} (-1)^(k-1) e^(-2k²λ²) (scipy.special.kolmogorov, scipy.stats.kstwobign.sf): the
 * asymptotic distribution of √n·D_n. For λ ≤ 0.82 it sums the equivalent theta-function series
 * of the CDF, √(2π)/λ Σ e^(-(2k-1)²π²/(8λ²)), which converges fast there. Absolute error about 1e-16.
 */
export function kolmogorovSf(lambda: number): number {
  if (Number.isNaN(lambda)) throw new RangeError('kolmogorovSf got NaN');
  // Below this the CDF underflows: P(K ≤ λ) < 1e-308.
  if (lambda <= 0.040611972203751713) return 1;
  if (lambda <= 0.82) {
    const logQ = -PI_SQUARED / (8 * lambda * lambda);
    let sum = 0;
    for (let k = 1; k < 100; k++) {
      const odd = 2 * k - 1;
      const term = Math.exp(odd * odd * logQ);
      sum += term;
      if (term <= sum * EPSILON) break;
    }
    return clampProbability(1 - (SQRT_2PI / lambda) * sum);
  }
  let sum = 0;
  for (let k = 1; k < 100; k++) {
    const term = Math.exp(-2 * k * k * lambda * lambda);
    sum += k % 2 === 1 ? term : -term;
    if (term <= Math.abs(sum) * EPSILON) break;
  }
  return clampProbability(2 * sum);
}

/** Beyond this n the one-sided Smirnov tail uses an approximation, as scipy's does. */
const SMIRNOV_MAX_EXACT_N = 1_000_000;

/**
 * The one-sided Smirnov distribution's survival function P(D_n⁺ ≥ d) for a sample of n
 * (scipy.special.smirnov): the Birnbaum–Tingey sum d Σ_{v=0}^{⌊n(1-d)⌋} C(n,v) (d+v/n)^(v-1)
 * (1-d-v/n)^(n-v), all terms positive, each evaluated in logs (ln C(n, v) summed with Kahan
 * compensation). Relative error below about 1e-12 up to n = 1,000,000, where O(n) terms may be
 * needed. For n > 1,000,000 it uses, like scipy, the approximation
 * exp(-(6nd+1)²/(18n)), whose relative error is O(1/√n).
 */
export function smirnovSf(n: number, d: number): number {
  requirePositiveInteger(n, 'smirnovSf n');
  if (Number.isNaN(d)) throw new RangeError('smirnovSf got NaN');
  if (d <= 0) return 1;
  if (d >= 1) return 0;
  if (n === 1) return 1 - d;
  if (-2 * n * d * d < LOG_MIN) return 0;
  if (n > SMIRNOV_MAX_EXACT_N) return Math.exp(-((6 * n * d + 1) ** 2) / (18 * n));
  const lastTerm = Math.floor(n * (1 - d));
  let sum = 0;
  let previous = 0;
  // ln C(n, v), accumulated with Kahan compensation: over up to n steps plain summation would lose
  // about 1e-16 of the running total per step.
  let logBinomial = 0;
  let compensation = 0;
  for (let v = 0; v <= lastTerm; v++) {
    if (v > 0) {
      const addend = Math.log((n - v + 1) / v) - compensation;
      const total = logBinomial + addend;
      compensation = total - logBinomial - addend;
      logBinomial = total;
    }
    const position = d + v / n;
    if (position >= 1) break; // (1 - d - v/n)^(n-v) is 0 from here on
    const term = Math.exp(logBinomial + (v - 1) * Math.log(position) + (n - v) * Math.log1p(-position));
    sum += term;
    // The terms rise to one peak and then fall; stop once they are past it and negligible.
    if (term < previous && term <= sum * 1e-17) break;
    previous = term;
  }
  return clampProbability(d * sum);
}

/**
 * Survival function of the two-sided one-sample Kolmogorov–Smirnov statistic for finite n,
 * P(D_n ≥ d) (scipy.stats.kstwo.sf(d, n)), with Simard & L'Ecuyer's choice of method and scipy's
 * cut-offs: Ruben–Gambino closed forms at the extremes (nd ≤ 1, nd ≥ n-1); 2·smirnovSf for d ≥ 0.5
 * (exact there) and in the far tail (n d² > 4 for n ≤ 140, n d² ≥ 2.2 above; it overcounts the
 * samples that cross both d and -d, a relative error of about e^(-6nd²): ≤ 2e-6 at the 2.2 cut-off,
 * the same approximation scipy makes, so the values still agree); otherwise 1 - CDF with
 * the CDF from Durbin's matrix method (exact; used where scipy uses it or Pomeranz's recursion,
 * another exact method) or the Pelz–Good asymptotic series (n > 100,000 or n d^1.5 > 1.4, as in scipy).
 * Agreement with scipy: better than 1e-9 relative across the tests' grid.
 */
export function kolmogorovSmirnovSf(n: number, d: number): number {
  requirePositiveInteger(n, 'kolmogorovSmirnovSf n');
  if (Number.isNaN(d)) throw new RangeError('kolmogorovSmirnovSf got NaN');
  if (d >= 1) return 0;
  if (d <= 0) return 1;
  const nd = n * d;
  if (nd <= 1) {
    if (nd <= 0.5) return 1;
    // P(D_n < d) = n!/n^n (2nd - 1)^n
    const cdf = n <= 140 ? productFactorialRatio(n, 2 * nd - 1) : Math.exp(logFactorialOverPower(n) + n * Math.log(2 * nd - 1));
    return clampProbability(1 - cdf);
  }
  if (nd >= n - 1) return clampProbability(2 * (1 - d) ** n);
  if (d >= 0.5) return clampProbability(2 * smirnovSf(n, d));
  const ndSquared = nd * d;
  if (n <= 140) {
    if (ndSquared <= 4) return clampProbability(1 - durbinMatrixCdf(n, d));
    return clampProbability(2 * smirnovSf(n, d));
  }
  if (ndSquared >= 370) return 0;
  if (ndSquared >= 2.2) return clampProbability(2 * smirnovSf(n, d));
  const cdf = n <= 100_000 && n * d ** 1.5 <= 1.4 ? durbinMatrixCdf(n, d) : pelzGoodCdf(n, d);
  return clampProbability(1 - cdf);
}

/** Π_{i=1..n} (i/n)·base, i.e. n!/n^n · base^n, for small n. */
function productFactorialRatio(n: number, base: number): number {
  let product = 1;
  for (let index = 1; index <= n; index++) product *= (index / n) * base;
  return product;
}

/** ln(n!/n^n) by Stirling's series with the n·ln n terms cancelled analytically; n > 140. */
function logFactorialOverPower(n: number): number {
  const inverse = 1 / n;
  const inverseSquared = inverse * inverse;
  const series = inverse * (1 / 12 + inverseSquared * (-1 / 360 + inverseSquared * (1 / 1260 + inverseSquared * (-1 / 1680))));
  return -n + 0.5 * Math.log(n) + LOG_SQRT_2PI + series;
}

/**
 * P(D_n < d) by Durbin's matrix formula in Marsaglia, Tsang & Wang's form: with k = ⌈nd⌉,
 * h = k - nd and the (2k-1)×(2k-1) matrix H, the answer is n!/n^n (H^n)_{k,k}. Powers by squaring,
 * rescaled by exact powers of two to stay in range. O(k³ log n) time.
 */
function durbinMatrixCdf(n: number, d: number): number {
  const nd = n * d;
  if (nd <= 0.5) return 0;
  if (d >= 1) return 1;
  const k = Math.ceil(nd);
  const h = k - nd;
  const size = 2 * k - 1;
  const inverseFactorial = new Float64Array(size + 1);
  inverseFactorial[0] = 1;
  for (let index = 1; index <= size; index++) inverseFactorial[index] = (inverseFactorial[index - 1] ?? 0) / index;
  const matrix = new Float64Array(size * size);
  for (let row = 0; row < size; row++) {
    for (let column = 0; column <= Math.min(size - 1, row + 1); column++) {
      matrix[row * size + column] = inverseFactorial[row - column + 1] ?? 0;
    }
  }
  for (let row = 0; row < size; row++) matrix[row * size] = (1 - h ** (row + 1)) * (inverseFactorial[row + 1] ?? 0);
  const lastRow = (size - 1) * size;
  for (let column = 0; column < size; column++)
    matrix[lastRow + column] = (1 - h ** (size - column)) * (inverseFactorial[size - column] ?? 0);
  matrix[lastRow] = (1 - 2 * h ** size + Math.max(0, 2 * h - 1) ** size) * (inverseFactorial[size] ?? 0);

  let power: Float64Array | undefined;
  let powerExponent = 0;
  let base: Float64Array = matrix;
  let baseExponent = 0;
  for (let remaining = n; remaining > 0; remaining = Math.floor(remaining / 2)) {
    if (remaining % 2 === 1) {
      if (power === undefined) {
        power = base.slice();
        powerExponent = baseExponent;
      } else {
        power = multiplySquare(power, base, size);
        powerExponent += baseExponent + rescale(power);
      }
    }
    if (remaining > 1) {
      base = multiplySquare(base, base, size);
      baseExponent = 2 * baseExponent + rescale(base);
    }
  }
  let value = power?.[(k - 1) * size + (k - 1)] ?? 0;
  let exponent = powerExponent;
  for (let index = 1; index <= n; index++) {
    value = (value * index) / n;
    if (value !== 0 && value < TWO_POW_MINUS_256) {
      value *= TWO_POW_256;
      exponent -= 256;
    }
  }
  return clampProbability(timesPowerOfTwo(value, exponent));
}

function multiplySquare(left: Float64Array, right: Float64Array, size: number): Float64Array {
  const product = new Float64Array(size * size);
  for (let row = 0; row < size; row++) {
    const rowOffset = row * size;
    for (let inner = 0; inner < size; inner++) {
      const factor = left[rowOffset + inner] ?? 0;
      if (factor === 0) continue;
      const innerOffset = inner * size;
      for (let column = 0; column < size; column++) {
        product[rowOffset + column] = (product[rowOffset + column] ?? 0) + factor * (right[innerOffset + column] ?? 0);
      }
    }
  }
  return product;
}

/** Scales the matrix down by 2^256 while its largest entry exceeds 2^256; returns the exponent taken out. */
function rescale(matrix: Float64Array): number {
  let largest = 0;
  for (const entry of matrix) largest = Math.max(largest, Math.abs(entry));
  let exponent = 0;
  while (largest > TWO_POW_256) {
    for (let index = 0; index < matrix.length; index++) matrix[index] = (matrix[index] ?? 0) * TWO_POW_MINUS_256;
    largest *= TWO_POW_MINUS_256;
    exponent += 256;
  }
  return exponent;
}

/** value · 2^exponent without intermediate overflow or underflow. */
function timesPowerOfTwo(value: number, exponent: number): number {
  let result = value;
  let remaining = exponent;
  while (remaining > 1000) {
    result *= 2 ** 1000;
    remaining -= 1000;
  }
  while (remaining < -1000) {
    result *= 2 ** -1000;
    remaining += 1000;
  }
  return result * 2 ** remaining;
}

/**
 * Pelz & Good's asymptotic series for P(D_n ≤ d): K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5 at
 * z = √n·d, each K written with Jacobi-theta sums that converge fast for small z.
 */
function pelzGoodCdf(n: number, d: number): number {
  if (d <= 0) return 0;
  if (d >= 1) return 1;
  const z = Math.sqrt(n) * d;
  const z2 = z * z;
  const z3 = z2 * z;
  const z4 = z2 * z2;
  const z6 = z4 * z2;
  const z7 = z6 * z;
  const z8 = z4 * z4;
  const z10 = z8 * z2;
  const logQ = -PI_SQUARED / (8 * z2);
  if (logQ < LOG_MIN) return 0;
  const pi4 = PI_SQUARED * PI_SQUARED;
  const pi6 = pi4 * PI_SQUARED;
  const terms = Math.ceil((16 * z) / Math.PI);
  let k0 = 0;
  let k1 = 0;
  let k2 = 0;
  let k3 = 0;
  for (let k = terms; k >= 1; k--) {
    const odd = 2 * k - 1;
    const odd2 = odd * odd;
    const odd4 = odd2 * odd2;
    const odd6 = odd4 * odd2;
    const weight = Math.exp(odd2 * logQ);
    k0 += weight;
    k1 += weight * ((PI_SQUARED / 4) * odd2 - z2);
    k2 += weight * (6 * z6 + 2 * z4 + ((PI_SQUARED * (2 * z4 - 5 * z2)) / 4) * odd2 + ((pi4 * (1 - 2 * z2)) / 16) * odd4);
    k3 +=
      weight *
      (-30 * z6 -
        90 * z8 +
        ((PI_SQUARED * (135 * z4 - 96 * z6)) / 4) * odd2 +
        ((pi4 * (212 * z4 - 60 * z2)) / 16) * odd4 +
        ((pi6 * (5 - 30 * z2)) / 64) * odd6);
  }
  k0 *= SQRT_2PI / z;
  k1 *= SQRT_2PI / (6 * z4);
  k2 *= SQRT_2PI / (72 * z7);
  k3 *= SQRT_2PI / (6480 * z10);
  const logR = -PI_SQUARED / (2 * z2);
  let square = 0;
  let squareCorrection = 0;
  for (let k = terms; k >= 1; k--) {
    const k2Value = k * k;
    const weight = k2Value * Math.exp(k2Value * logR);
    square += weight;
    squareCorrection += (3 * z2 - PI_SQUARED * k2Value) * weight;
  }
  k2 -= ((PI_SQUARED * SQRT_2PI) / (36 * z3)) * square;
  k3 += ((PI_SQUARED * SQRT_2PI) / (216 * z6)) * squareCorrection;
  const rootN = Math.sqrt(n);
  return clampProbability(k0 + k1 / rootN + k2 / n + k3 / (n * rootN));
}

/** How ksTwoSamplePValue computes: scipy's ks_2samp `method`. */
export type KsPValueMethod = 'auto' | 'exact' | 'asymp';

/** 'auto' computes exactly when both samples have at most this many values (scipy's MAX_AUTO_N). */
export const KS_EXACT_MAX_N = 10_000;

export interface KsPValue {
  readonly pValue: number;
  /** The statistic the p-value is for: in exact mode d rounded to the lattice h / lcm(n1, n2). */
  readonly statistic: number;
  readonly method: 'exact' | 'asymp';
}

const INT32_MAX = 2_147_483_647;

/**
 * Two-sided p-value of the two-sample Kolmogorov–Smirnov statistic d for sample sizes n1, n2,
 * with scipy.stats.ks_2samp's semantics (scipy ≥ 1.5):
 * - 'exact': the exact null distribution, P(D ≥ d) for two samples drawn from one continuous
 *   distribution, counting lattice paths. d is first rounded to h / lcm(n1, n2). For n1 = n2 an
 *   alternating binomial series (Horner form); otherwise the recursion over the (n1+1)(n2+1)
 *   lattice, restricted to the band the path may cross, in Viehmann's form that tracks the
 *   probability of having left the band, so small p-values keep their relative precision. Time
 *   about 2·d·n1·n2 steps; relative error about 1e-13. Falls back to 'asymp', as scipy does, when
 *   lcm(n1, n2) does not fit in an int32.
 * - 'asymp': scipy's large-sample method, which is not the limiting Q_KS series but the one-sample
 *   distribution P(D_m ≥ d) at m = round(n1·n2 / (n1+n2)) (kolmogorovSmirnovSf); see its error there.
 * - 'auto' (default): 'exact' when max(n1, n2) ≤ 10,000, else 'asymp' — scipy's current rule.
 *   (Old scipy releases switched on n1·n2 < 10,000 instead.)
 * The p-value is clipped to [0, 1]. Throws RangeError for sizes that are not positive integers or
 * d outside [0, 1].
 */
export function ksTwoSamplePValue(d: number, n1: number, n2: number, method: KsPValueMethod = 'auto'): KsPValue {
  requirePositiveInteger(n1, 'ksTwoSamplePValue n1');
  requirePositiveInteger(n2, 'ksTwoSamplePValue n2');
  if (!(d >= 0 && d <= 1)) throw new RangeError(`ksTwoSamplePValue needs d in [0, 1], got ${d}`);
  const divisor = greatestCommonDivisor(n1, n2);
  let mode: 'exact' | 'asymp' = method === 'auto' ? (Math.max(n1, n2) <= KS_EXACT_MAX_N ? 'exact' : 'asymp') : method;
  if (mode === 'exact' && n1 / divisor >= INT32_MAX / (n2 / divisor)) mode = 'asymp';
  let statistic = d;
  if (mode === 'exact') {
    const lcm = (n1 / divisor) * n2;
    const h = roundHalfEven(d * lcm);
    statistic = h / lcm;
    if (h === 0) return { pValue: 1, statistic, method: 'exact' };
    const pValue = n1 === n2 ? probabilityOutsideSquare(n1, h) : probabilityLeavingBand(n1, n2, divisor, h);
    if (pValue >= 0 && pValue <= 1) return { pValue, statistic, method: 'exact' };
  }
  const larger = Math.max(n1, n2);
  const smaller = Math.min(n1, n2);
  const effective = Math.max(1, roundHalfEven((larger * smaller) / (larger + smaller)));
  return { pValue: clampProbability(kolmogorovSmirnovSf(effective, statistic)), statistic, method: 'asymp' };
}

/**
 * P(D_{n,n} ≥ h/n) = 2 Σ_{j≥1} (-1)^(j-1) C(2n, n-jh) / C(2n, n), evaluated from the innermost
 * term outwards as 2·A1(1 - A2(1 - A3(…))), A_j = C(2n, n-jh) / C(2n, n-(j-1)h), so nothing overflows.
 */
function probabilityOutsideSquare(n: number, h: number): number {
  let nested = 0;
  for (let j = Math.floor(n / h); j >= 0; j--) {
    let ratio = 1;
    for (let step = 0; step < h; step++) ratio = ((n - j * h - step) * ratio) / (n + j * h + step + 1);
    nested = ratio * (1 - nested);
  }
  return 2 * nested;
}

/**
 * The share of monotone lattice paths from (0, 0) to (m, n) (m ≥ n, all paths equally likely)
 * that touch a point with |i·n/g - j·m/g| ≥ h, i.e. |i/m - j/n| ≥ h / lcm: for a point inside the
 * band, Q(i, j) = (i·Q(i-1, j) + j·Q(i, j-1)) / (i + j), and Q = 1 outside it. Only the band's
 * rows of two columns are kept.
 */
function probabilityLeavingBand(n1: number, n2: number, divisor: number, h: number): number {
  const m = Math.max(n1, n2);
  const n = Math.min(n1, n2);
  const mg = m / divisor;
  const ng = n / divisor;
  let previous = new Float64Array(n + 1);
  let current = new Float64Array(n + 1);
  // Column 0: inside for j·mg < h; nothing has left the band yet.
  let previousLow = 0;
  let previousHigh = Math.min(Math.ceil(h / mg), n + 1);
  for (let i = 1; i <= m; i++) {
    const low = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
    const high = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (high <= low) return 1;
    let below = 1; // Q(i, low - 1): outside the band (unused when low = 0, its weight j is 0)
    for (let j = low; j < high; j++) {
      const left = j >= previousLow && j < previousHigh ? (previous[j] ?? 1) : 1;
      const value = (i * left + j * below) / (i + j);
      current[j] = value;
      below = value;
    }
    [previous, current] = [current, previous];
    previousLow = low;
    previousHigh = high;
  }
  return previous[n] ?? 1;
}

function greatestCommonDivisor(left: number, right: number): number {
  let a = left;
  let b = right;
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Rounds to the nearest integer, ties to even (numpy's round). */
export function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

function clampProbability(value: number): number {
  return Math.min(1, Math.max(0, value));
}

function requirePositiveInteger(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
}
