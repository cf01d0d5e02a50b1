import { describe, expect, it } from 'vitest';
import { Arm, DEFAULT_GATES, evaluateGates, parseGates, psi } from './gates.js';

/** An arm of n predictions with scores from `score(i)`, `fallbacks` of them fallbacks, latency 2 ms. */
function arm(n: number, score: (index: number) => number, fallbacks = 0): Arm {
  const result = new Arm();
  for (let index = 0; index < n; index += 1) result.predicted(score(index), 2, index < fallbacks);
  return result;
}

const spread = (index: number): number => ((index * 7919) % 1000) / 1000;

describe('gates', () => {
  it('waits below the minimum sample, whatever the canary does', () => {
    const verdict = evaluateGates(
      arm(1_000, spread),
      arm(499, () => 0.5, 499),
      DEFAULT_GATES,
    );
    expect(verdict.verdict).toBe('wait');
  });

  it('passes a canary that behaves like the champion, once the label test has its minimum too', () => {
    const champion = arm(5_000, spread);
    const canary = arm(600, (index) => spread(index + 3));
    // Enough predictions, no labels yet: no gate failed, but the label test has not judged.
    expect(evaluateGates(champion, canary, DEFAULT_GATES).verdict).toBe('wait');
    for (let index = 0; index < DEFAULT_GATES.minLabelled; index += 1) {
      champion.labelledOutcome(spread(index), index % 10 === 0);
      canary.labelledOutcome(spread(index + 3), index % 10 === 0);
    }
    expect(evaluateGates(champion, canary, DEFAULT_GATES).verdict).toBe('pass');
    // With the label test off, predictions alone decide.
    expect(
      evaluateGates(
        arm(5_000, spread),
        arm(600, (index) => spread(index + 3)),
        parseGates('minLabelled=off'),
      ).verdict,
    ).toBe('pass');
  });

  it('fails on a fallback rate 3 points above the champion', () => {
    const verdict = evaluateGates(arm(5_000, spread, 50), arm(1_000, spread, 40), DEFAULT_GATES);
    expect(verdict.readings.find((reading) => reading.gate === 'fallback_rate_increase')?.failed).toBe(true);
    expect(verdict.verdict).toBe('fail');
  });

  it('fails on scores shifted away from the champion (a constant score)', () => {
    const verdict = evaluateGates(
      arm(5_000, spread),
      arm(1_000, () => 0.01),
      DEFAULT_GATES,
    );
    expect(verdict.readings.find((reading) => reading.gate === 'score_psi')?.failed).toBe(true);
  });

  it('fails on p99 latency over the limit', () => {
    const slow = new Arm();
    for (let index = 0; index < 1_000; index += 1) slow.predicted(spread(index), index % 50 === 0 ? 400 : 3, false);
    expect(
      evaluateGates(arm(5_000, spread), slow, DEFAULT_GATES).readings.find((reading) => reading.gate === 'p99_latency_ms')?.failed,
    ).toBe(true);
  });

  it('fails a canary with worse log loss on labels, never a better one', () => {
    const champion = arm(5_000, spread);
    const worse = arm(5_000, spread);
    const better = arm(5_000, spread);
    for (let index = 0; index < 3_000; index += 1) {
      const positive = index % 10 === 0;
      champion.labelledOutcome(positive ? 0.6 : 0.2, positive);
      worse.labelledOutcome(positive ? 0.3 : 0.4, positive);
      better.labelledOutcome(positive ? 0.8 : 0.1, positive);
    }
    const reading = (canary: Arm) =>
      evaluateGates(champion, canary, DEFAULT_GATES).readings.find((entry) => entry.gate === 'log_loss_msprt');
    expect(reading(worse)?.failed).toBe(true);
    expect(reading(better)?.failed).toBe(false);
  });

  it('psi is 0 for the same distribution and large for a point mass', () => {
    const values = Array.from({ length: 1_000 }, (_, index) => spread(index));
    expect(psi(values, values)).toBeCloseTo(0, 10);
    expect(psi(values, [0.5, 0.5, 0.5])).toBeGreaterThan(1);
  });

  it('parses --gates over the defaults and refuses unknown gates and bad numbers', () => {
    expect(parseGates('minSample=100, maxScorePsi=off')).toMatchObject({
      minSample: 100,
      maxScorePsi: Number.POSITIVE_INFINITY,
      alpha: 0.05,
    });
    expect(() => parseGates('speed=3')).toThrow(/unknown gate "speed"/);
    expect(() => parseGates('alpha=x')).toThrow(/alpha needs a number/);
  });
});
