import { describe, expect, it } from 'vitest';
import { pearson, quantile, ShadowComparison, type ScoredEvent } from './shadow-compare.js';

const scored = (id: string, time: number, score: number, latency = 1, fallback: string | null = null): ScoredEvent => ({
  event_id: id,
  score,
  decision: score >= 0.5,
  latency_ms: latency,
  event_time: time,
  fallback_reason: fallback,
});

const options = {
  model: 'fraud',
  deploymentId: 'd1',
  championVersion: 1,
  shadowVersion: 2,
  windowMs: 60_000,
  graceMs: 10_000,
  now: () => 7,
};

describe('shadow comparison', () => {
  it('pairs by event id in any order and reports a window once its end plus grace has passed', () => {
    const comparison = new ShadowComparison(options);
    comparison.add('shadow', scored('b', 2_000, 0.8, 5));
    comparison.add('champion', scored('a', 1_000, 0.1, 2));
    comparison.add('champion', scored('b', 2_000, 0.6, 3));
    comparison.add('shadow', scored('a', 1_000, 0.4, 4));
    comparison.add('champion', scored('c', 3_000, 0.9, 1));
    expect(comparison.close(69_999)).toEqual([]);
    const [window] = comparison.close(70_000);
    expect(window).toMatchObject({
      window_start: 0,
      window_end: 60_000,
      pairs: 2,
      unpaired: 1,
      decision_agreement: 1,
      champion_positive_rate: 0.5,
      shadow_positive_rate: 0.5,
      champion_latency_p99_ms: 3,
      shadow_latency_p99_ms: 5,
      shadow_fallbacks: 0,
      at: 7,
    });
    expect(window?.mean_abs_score_diff).toBeCloseTo(0.25, 12);
    expect(window?.score_correlation).toBeCloseTo(1, 12);
    expect(comparison.close(1e9)).toEqual([]);
  });

  it('counts disagreements, shadow fallbacks and late predictions', () => {
    const comparison = new ShadowComparison(options);
    comparison.add('champion', scored('a', 1_000, 0.9));
    comparison.add('shadow', scored('a', 1_000, 0.2, 1, 'model_error: boom'));
    comparison.add('champion', scored('b', 61_000, 0.1));
    comparison.add('shadow', scored('b', 61_000, 0.3));
    const closed = comparison.close(70_000);
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ pairs: 1, decision_agreement: 0, shadow_fallbacks: 1, score_correlation: null });
    comparison.add('champion', scored('z', 5_000, 0.5));
    expect(comparison.late).toBe(1);
    const rest = comparison.flush();
    expect(rest.map((window) => [window.window_start, window.pairs])).toEqual([[60_000, 1]]);
  });

  it('computes Pearson correlation and nearest-rank quantiles', () => {
    expect(pearson([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 12);
    expect(pearson([1, 2, 3, 4], [1, 3, 2, 4])).toBeCloseTo(0.8, 12);
    expect(pearson([1, 1], [1, 2])).toBeNull();
    expect(pearson([1], [1])).toBeNull();
    const values = Array.from({ length: 100 }, (_, index) => 100 - index);
    expect(quantile(values, 0.99)).toBe(99);
    expect(quantile(values, 0.5)).toBe(50);
    expect(quantile([], 0.99)).toBeNull();
  });
});
