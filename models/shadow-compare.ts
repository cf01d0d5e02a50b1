/**
 * Shadow comparison: the champion's and the shadow version's predictions of the same events,
 * paired by event id and summed up per tumbling window of prediction event time. Plain data in,
 * plain records out: the shadow job feeds it from the prediction topics and writes what it returns.
 */
export interface ScoredEvent {
  readonly event_id: string;
  readonly score: number;
  readonly decision: boolean;
  readonly latency_ms: number;
  readonly event_time: number;
  readonly fallback_reason: string | null;
}

export interface ShadowWindow {
  readonly model_name: string;
  readonly deployment_id: string;
  readonly champion_version: number;
  readonly shadow_version: number;
  readonly window_start: number;
  readonly window_end: number;
  readonly pairs: number;
  readonly unpaired: number;
  readonly score_correlation: number | null;
  readonly decision_agreement: number | null;
  readonly mean_abs_score_diff: number | null;
  readonly champion_positive_rate: number | null;
  readonly shadow_positive_rate: number | null;
  readonly champion_latency_p99_ms: number | null;
  readonly shadow_latency_p99_ms: number | null;
  readonly shadow_fallbacks: number;
  readonly at: number;
}

interface Pair {
  champion?: ScoredEvent;
  shadow?: ScoredEvent;
}

/** Pearson correlation; null under 2 points or when either side is constant. */
export function pearson(xs: readonly number[], ys: readonly number[]): number | null {
  const n = xs.length;
  if (n < 2 || ys.length !== n) return null;
  let mx = 0;
  let my = 0;
  xs.forEach((x, i) => {
    mx += x;
    my += ys[i] ?? 0;
  });
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i += 1) {
    const dx = (xs[i] ?? 0) - mx;
    const dy = (ys[i] ?? 0) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return null;
  return sxy / Math.sqrt(sxx * syy);
}

/** The nearest-rank quantile of the values; null when there are none. */
export function quantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null;
}

export interface ComparisonOptions {
  readonly model: string;
  readonly deploymentId: string;
  readonly championVersion: number;
  readonly shadowVersion: number;
  readonly windowMs: number;
  /** How far past a window's end event time must be before it is reported (out-of-order predictions). */
  readonly graceMs: number;
  readonly now?: () => number;
}

/**
 * Windows of paired predictions. `add` takes either side in any order; `close(watermark)` returns
 * the windows whose end plus grace the watermark has passed, once each; `flush` the rest.
 */
export class ShadowComparison {
  private readonly windows = new Map<number, Map<string, Pair>>();
  private closedBefore = Number.NEGATIVE_INFINITY;
  /** Predictions that came for a window already reported: counted, not in any record. */
  late = 0;

  constructor(private readonly options: ComparisonOptions) {}

  add(side: 'champion' | 'shadow', prediction: ScoredEvent): void {
    const start = Math.floor(prediction.event_time / this.options.windowMs) * this.options.windowMs;
    if (start < this.closedBefore) {
      this.late += 1;
      return;
    }
    let window = this.windows.get(start);
    if (!window) this.windows.set(start, (window = new Map<string, Pair>()));
    let pair = window.get(prediction.event_id);
    if (!pair) window.set(prediction.event_id, (pair = {}));
    pair[side] = prediction;
  }

  /** The windows ending (plus grace) at or before the watermark, oldest first. */
  close(watermark: number): ShadowWindow[] {
    const due = [...this.windows.keys()]
      .filter((start) => start + this.options.windowMs + this.options.graceMs <= watermark)
      .sort((a, b) => a - b);
    const last = due.at(-1);
    if (last !== undefined) this.closedBefore = Math.max(this.closedBefore, last + this.options.windowMs);
    return due.map((start) => this.report(start));
  }

  /** Every window still open, oldest first (the run is ending). */
  flush(): ShadowWindow[] {
    const starts = [...this.windows.keys()].sort((a, b) => a - b);
    const last = starts.at(-1);
    if (last !== undefined) this.closedBefore = Math.max(this.closedBefore, last + this.options.windowMs);
    return starts.map((start) => this.report(start));
  }

  private report(start: number): ShadowWindow {
    const pairs = [...(this.windows.get(start)?.values() ?? [])];
    this.windows.delete(start);
    const both = pairs.filter((pair): pair is Required<Pair> => pair.champion !== undefined && pair.shadow !== undefined);
    const champion = both.map((pair) => pair.champion);
    const shadow = both.map((pair) => pair.shadow);
    const n = both.length;
    const mean = (values: readonly number[]): number | null =>
      values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
    return {
      model_name: this.options.model,
      deployment_id: this.options.deploymentId,
      champion_version: this.options.championVersion,
      shadow_version: this.options.shadowVersion,
      window_start: start,
      window_end: start + this.options.windowMs,
      pairs: n,
      unpaired: pairs.filter((pair) => pair.champion !== undefined && pair.shadow === undefined).length,
      score_correlation: pearson(
        champion.map((p) => p.score),
        shadow.map((p) => p.score),
      ),
      decision_agreement: mean(both.map((pair) => (pair.champion.decision === pair.shadow.decision ? 1 : 0))),
      mean_abs_score_diff: mean(both.map((pair) => Math.abs(pair.champion.score - pair.shadow.score))),
      champion_positive_rate: mean(champion.map((p) => (p.decision ? 1 : 0))),
      shadow_positive_rate: mean(shadow.map((p) => (p.decision ? 1 : 0))),
      champion_latency_p99_ms: quantile(
        champion.map((p) => p.latency_ms),
        0.99,
      ),
      shadow_latency_p99_ms: quantile(
        shadow.map((p) => p.latency_ms),
        0.99,
      ),
      shadow_fallbacks: shadow.filter((p) => p.fallback_reason !== null).length,
      at: (this.options.now ?? Date.now)(),
    };
  }
}
