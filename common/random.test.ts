import { describe, expect, it } from 'vitest';
import { randomState, randomStep, seededRandom } from './random.js';

describe('seeded random', () => {
  it('repeats its sequence for a seed and differs between seeds', () => {
    const draw = (seed: number): number[] => {
      const random = seededRandom(seed);
      return Array.from({ length: 5 }, () => random.next());
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('continues from its state', () => {
    const random = seededRandom(1);
    random.next();
    const resumed = seededRandom(random.state);
    expect(resumed.next()).toBe(random.next());
  });

  it('draws uniformly in [0, 1)', () => {
    const random = seededRandom(3);
    const draws = Array.from({ length: 20_000 }, () => random.next());
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    const mean = draws.reduce((total, value) => total + value, 0) / draws.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
  });

  it('steps purely and maps any seed to a 32-bit state', () => {
    expect(randomStep(5)).toEqual(randomStep(5));
    expect(randomStep(5).output).toBeLessThanOrEqual(0xffffffff);
    expect([randomState(-1), randomState(2 ** 32 + 3), randomState(Number.NaN), randomState(4.9)]).toEqual([0xffffffff, 3, 0, 4]);
  });
});
