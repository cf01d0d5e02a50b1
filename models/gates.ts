import { ConfigError } from '../common/errors.js';
import { addSample, emptyMean, msprt, type MeanStats } from './msprt.js';

/**
 * A canary's success criteria, computed from its predictions and their labels alone (the
 * monitoring streams can feed the same arm statistics when they exist). Each gate is a function
 * of the two arms: a new gate is one more entry of GATES.
 */
export interface GateConfig {
  /** Predictions an arm needs before any gate gives a verdict. */
  readonly minSample: number;
  /** Largest excess of the canary's fallback rate over the champion's (0.02: two points). */
  readonly maxFallbackIncrease: number;
  /** Largest p99 scoring latency of the canary, in milliseconds. */
  readonly maxP99LatencyMs: number;
  /** Largest PSI of the canary's scores against the champion's (binned at the champion's deciles). */
  readonly maxScorePsi: number;
  /** Labelled outcomes an arm needs before the label test gives a verdict. */
  readonly minLabelled: number;
  /** The label test's always-valid false-positive bound. */
  readonly alpha: number;
  /** The scale of log-loss differences the label test looks for (its mixture's standard deviation). */
  readonly tau: number;
}

export const DEFAULT_GATES: GateConfig = {
  minSample: 500,
  maxFallbackIncrease: 0.02,
  maxP99LatencyMs: 250,
  maxScorePsi: 0.25,
  minLabelled: 200,
  alpha: 0.05,
  tau: 0.05,
};

/** What one arm (champion or canary) did during the deployment. */
export interface ArmStats {
  readonly predictions: number;
  readonly fallbacks: number;
  readonly latenciesMs: readonly number[];
  readonly scores: readonly number[];
  /** Log loss of each labelled prediction. */
  readonly logLoss: MeanStats;
  readonly labelled: number;
}

/** Mutable arm statistics, fed prediction by prediction. */
export class Arm implements ArmStats {
  predictions = 0;
  fallbacks = 0;
  readonly latenciesMs: number[] = [];
  readonly scores: number[] = [];
  logLoss: MeanStats = emptyMean;
  labelled = 0;

  predicted(score: number, latencyMs: number, fallback: boolean): void {
    this.predictions += 1;
    if (fallback) this.fallbacks += 1;
    else this.scores.push(score);
    this.latenciesMs.push(latencyMs);
  }

  /** A labelled outcome of one of this arm's predictions. */
  labelledOutcome(score: number, positive: boolean): void {
    const p = Math.min(1 - 1e-7, Math.max(1e-7, score));
    this.logLoss = addSample(this.logLoss, -(positive ? Math.log(p) : Math.log(1 - p)));
    this.labelled += 1;
  }
}

export interface GateReading {
  readonly gate: string;
  readonly value: number;
  readonly limit: number;
  /** undefined: not enough data for a verdict yet. */
  readonly failed: boolean | undefined;
}

export interface GateVerdict {
  /** fail: some gate failed; pass: every gate had enough data and passed; wait: not enough data yet. */
  readonly verdict: 'pass' | 'fail' | 'wait';
  readonly readings: readonly GateReading[];
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((left, right) => left - right);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

/** Population stability index of `actual` against `expected`, binned at `expected`'s deciles. */
export function psi(expected: readonly number[], actual: readonly number[]): number {
  if (expected.length === 0 || actual.length === 0) return 0;
  const sorted = [...expected].sort((left, right) => left - right);
  const edges = [...new Set(Array.from({ length: 9 }, (_, index) => sorted[Math.floor(((index + 1) / 10) * sorted.length)] ?? 0))];
  const bin = (value: number): number => {
    let index = 0;
    while (index < edges.length && value > (edges[index] ?? 0)) index += 1;
    return index;
  };
  const share = (values: readonly number[]): number[] => {
    const counts = new Array<number>(edges.length + 1).fill(0);
    for (const value of values) counts[bin(value)] = (counts[bin(value)] ?? 0) + 1;
    return counts.map((count) => Math.max(count / values.length, 1e-4));
  };
  const e = share(expected);
  const a = share(actual);
  return e.reduce((sum, expectedShare, index) => sum + ((a[index] ?? 0) - expectedShare) * Math.log((a[index] ?? 1e-4) / expectedShare), 0);
}

type Gate = (champion: ArmStats, canary: ArmStats, config: GateConfig) => GateReading;

const enough = (config: GateConfig, ...arms: ArmStats[]): boolean => arms.every((arm) => arm.predictions >= config.minSample);

export const GATES: readonly Gate[] = [
  (champion, canary, config) => {
    const rate = (arm: ArmStats): number => (arm.predictions === 0 ? 0 : arm.fallbacks / arm.predictions);
    const value = rate(canary) - (champion.predictions > 0 ? rate(champion) : 0);
    const limit = config.maxFallbackIncrease;
    return { gate: 'fallback_rate_increase', value, limit, failed: enough(config, canary) ? value > limit : undefined };
  },
  (_champion, canary, config) => {
    const value = quantile(canary.latenciesMs, 0.99);
    return {
      gate: 'p99_latency_ms',
      value,
      limit: config.maxP99LatencyMs,
      failed: enough(config, canary) ? value > config.maxP99LatencyMs : undefined,
    };
  },
  (champion, canary, config) => {
    const value = psi(champion.scores, canary.scores);
    // At 100% the champion has no arm: the shift was judged at the earlier steps.
    const judged = enough(config, champion, canary);
    return { gate: 'score_psi', value, limit: config.maxScorePsi, failed: judged ? value > config.maxScorePsi : undefined };
  },
  (champion, canary, config) => {
    const test = msprt(champion.logLoss, canary.logLoss, config.alpha, config.tau);
    const judged = champion.labelled >= config.minLabelled && canary.labelled >= config.minLabelled;
    // Only a worse canary fails (higher log loss); Λ is reported on a log scale against log(1/α).
    return {
      gate: 'log_loss_msprt',
      value: test.logLikelihoodRatio,
      limit: Math.log(1 / config.alpha),
      failed: judged ? test.rejected && test.difference > 0 : undefined,
    };
  },
];

/** Every gate on the two arms: the first failure decides, else pass once the canary has its sample. */
export function evaluateGates(champion: ArmStats, canary: ArmStats, config: GateConfig): GateVerdict {
  const readings = GATES.map((gate) => gate(champion, canary, config));
  if (readings.some((reading) => reading.failed === true)) return { verdict: 'fail', readings };
  // A pass is a reading from every gate that is on, the label test included (off: minLabelled=off),
  // not just no failure yet: no promotion before the minimum sample of each.
  const required = (reading: GateReading): boolean =>
    reading.limit !== Number.POSITIVE_INFINITY && (reading.gate !== 'log_loss_msprt' || Number.isFinite(config.minLabelled));
  const judged = readings.every((reading) => !required(reading) || reading.failed === false);
  return { verdict: enough(config, canary) && judged ? 'pass' : 'wait', readings };
}

/** The gates as the strings a deployment record stores. */
export function gatesRecord(config: GateConfig): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [key, String(value)]));
}

/** Parses `--gates key=value,...` over the defaults; throws on an unknown key or a bad number. */
export function parseGates(text: string | undefined): GateConfig {
  const config: Record<string, number> = { ...DEFAULT_GATES };
  for (const part of (text ?? '').split(',').filter((entry) => entry.trim() !== '')) {
    const [key = '', value = ''] = part.split('=').map((entry) => entry.trim());
    if (!(key in DEFAULT_GATES)) throw new ConfigError(`unknown gate "${key}"; gates: ${Object.keys(DEFAULT_GATES).join(', ')}`);
    const number = value === 'off' ? Number.POSITIVE_INFINITY : Number(value);
    if (value === '' || Number.isNaN(number)) throw new ConfigError(`gate ${key} needs a number (or off), got "${value}"`);
    config[key] = number;
  }
  return config as unknown as GateConfig;
}
