import { describe, expect, it } from 'vitest';
import { addSample, emptyMean, msprt, type MeanStats } from './msprt.js';

/** A seeded generator of standard normal draws (mulberry32 + Box–Muller). */
function normals(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  return () => Math.sqrt(-2 * Math.log(uniform() || 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

/** Streams both arms, peeking after every 20 samples; the sample count at the first rejection, if any. */
function firstRejection(seed: number, shift: number, samples: number): number | undefined {
  const draw = normals(seed);
  let control: MeanStats = emptyMean;
  let treatment: MeanStats = emptyMean;
  for (let index = 1; index <= samples; index += 1) {
    control = addSample(control, draw());
    treatment = addSample(treatment, draw() + shift);
    if (index % 20 === 0 && msprt(control, treatment, 0.05, 0.3).rejected) return index;
  }
  return undefined;
}

describe('msprt', () => {
  it('gives no verdict without samples, and none from one sample an arm', () => {
    expect(msprt(emptyMean, emptyMean, 0.05, 0.1).rejected).toBe(false);
    expect(msprt(addSample(emptyMean, 1), addSample(emptyMean, 5), 0.05, 0.1).rejected).toBe(false);
  });

  it('keeps false positives under α despite peeking 100 times a run (200 runs without a difference)', () => {
    let rejections = 0;
    for (let seed = 1; seed <= 200; seed += 1) if (firstRejection(seed, 0, 2_000) !== undefined) rejections += 1;
    expect(rejections / 200).toBeLessThanOrEqual(0.05);
  });

  it('finds a difference of 0.3 standard deviations in every run, within 1,000 samples an arm', () => {
    const found = Array.from({ length: 50 }, (_, seed) => firstRejection(1_000 + seed, 0.3, 2_000));
    expect(found.every((at) => at !== undefined && at <= 1_000)).toBe(true);
  });

  it('reports the sign of the difference', () => {
    const result = msprt([1, 2, 3, 2, 1].reduce(addSample, emptyMean), [5, 6, 7, 6, 5].reduce(addSample, emptyMean), 0.05, 1);
    expect(result.difference).toBeCloseTo(4, 10);
    expect(result.rejected).toBe(true);
  });
});
