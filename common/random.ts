/**
 * A small seeded pseudo-random generator (Mulberry32) whose whole state is one unsigned 32-bit
 * integer, so it can be stored with the data it drives: a sketch restored from its state continues
 * with exactly the random choices it would have made had it never been stored. Not for anything
 * where unpredictability matters; only for reproducible sampling decisions and test data.
 */

/** Turns any number into a generator state: its integer part modulo 2^32 (NaN and ±Infinity give 0). */
export function randomState(seed: number): number {
  return Number.isFinite(seed) ? Math.trunc(seed) >>> 0 : 0;
}

/**
 * Advances the generator by one step: returns the next state and a uniformly distributed
 * unsigned 32-bit output. Pure; the caller keeps the state.
 */
export function randomStep(state: number): { readonly state: number; readonly output: number } {
  const next = (state + 0x6d2b79f5) >>> 0;
  let mixed = Math.imul(next ^ (next >>> 15), next | 1);
  mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61);
  return { state: next, output: (mixed ^ (mixed >>> 14)) >>> 0 };
}

export interface SeededRandom {
  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number;
  /** The current state: seededRandom(state) continues the same sequence. */
  readonly state: number;
}

/** A stateful generator over randomStep, convenient for test data. */
export function seededRandom(seed: number): SeededRandom {
  let state = randomState(seed);
  return {
    next(): number {
      const step = randomStep(state);
      state = step.state;
      return step.output / 4_294_967_296;
    },
    get state(): number {
      return state;
    },
  };
}

/** The same sequence as a plain function (uniform in [0, 1)): for shuffles and generators. */
export function uniformRandom(seed: number): () => number {
  const random = seededRandom(seed);
  return () => random.next();
}
