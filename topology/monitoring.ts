import { parseDuration } from '../common/durations.js';

/**
 * Monitoring, declared: how drift and performance are computed (windows, sample sizes,
 * thresholds, the multiple-testing correction) and which alerts fire on them (rules with
 * hysteresis, cooldown and optional actions). Plain data; the monitoring stages run it.
 */

type Duration = string | number;

/** How per-feature p-values of one window are corrected for testing many features at once. */
export type Correction = 'benjamini-hochberg' | 'bonferroni' | 'none';

export interface MonitoringSettings {
  /** Tumbling event-time windows of the drift and performance stages. */
  readonly windowMs: number;
  /** How far event time may go back before a record is late (its window has been evaluated). */
  readonly graceMs: number;
  /**
   * The sliding "last N events" view, per model version: the latest `events` predictions by event
   * time, evaluated when a tick of `tickMs` of event time closes and at least events / blocks of
   * them are new. Every input partition seals blocks of at most ⌈events / (blocks · partitions)⌉
   * predictions within a tick; the view holds between `events` and `events` plus its oldest bucket.
   */
  readonly lastN: { readonly events: number; readonly blocks: number; readonly tickMs: number } | undefined;
  /** Fewest valid values on each side for a verdict (below it: INSUFFICIENT). */
  readonly minSample: number;
  /** Significance level after correction. */
  readonly alpha: number;
  readonly correction: Correction;
  /** Effect size a drifted feature also needs: PSI on the reference's bins (categories) at least this. */
  readonly psiThreshold: number;
  /** KLL accuracy parameter of the window sketches (rank error 2.446 / k^0.9433). */
  readonly sketchK: number;
  /** The dataset drifts when at least this share of the tested inputs drifted. */
  readonly driftShare: number;
  /** Score bins of the performance stage's ROC (on the logit scale) and calibration bins. */
  readonly scoreBins: number;
  readonly calibrationBins: number;
}

export interface MonitoringInput {
  readonly window?: Duration;
  readonly grace?: Duration;
  /** `false` turns the last-N view off. */
  readonly lastN?: { readonly events: number; readonly blocks?: number; readonly every?: Duration } | false;
  readonly minSample?: number;
  readonly alpha?: number;
  readonly correction?: Correction;
  readonly psiThreshold?: number;
  readonly sketchK?: number;
  readonly driftShare?: number;
  readonly scoreBins?: number;
  readonly calibrationBins?: number;
}

export class MonitoringDefinitionError extends Error {
  override readonly name = 'MonitoringDefinitionError';
}

/** Monitoring settings with every default filled in (1 h windows, last 1,000 events every minute, min sample 100, BH at 0.05, PSI 0.2). */
export function monitoring(input: MonitoringInput = {}): MonitoringSettings {
  const windowMs = parseDuration(input.window ?? '1h');
  if (windowMs <= 0) throw new MonitoringDefinitionError('the monitoring window must be positive');
  const lastN =
    input.lastN === false
      ? undefined
      : { events: input.lastN?.events ?? 1_000, blocks: input.lastN?.blocks ?? 4, tickMs: parseDuration(input.lastN?.every ?? '1m') };
  if (lastN && (!Number.isInteger(lastN.events) || lastN.events < 1 || !Number.isInteger(lastN.blocks) || lastN.blocks < 1))
    throw new MonitoringDefinitionError('lastN needs positive integers events and blocks');
  if (lastN && !(lastN.tickMs > 0)) throw new MonitoringDefinitionError('lastN.every must be a positive duration');
  const settings: MonitoringSettings = {
    windowMs,
    graceMs: parseDuration(input.grace ?? '5m'),
    lastN,
    minSample: input.minSample ?? 100,
    alpha: input.alpha ?? 0.05,
    correction: input.correction ?? 'benjamini-hochberg',
    psiThreshold: input.psiThreshold ?? 0.2,
    sketchK: input.sketchK ?? 200,
    driftShare: input.driftShare ?? 0.5,
    scoreBins: input.scoreBins ?? 1_000,
    calibrationBins: input.calibrationBins ?? 10,
  };
  if (!(settings.alpha > 0 && settings.alpha < 1)) throw new MonitoringDefinitionError(`alpha must be in (0, 1), got ${settings.alpha}`);
  if (!(settings.driftShare > 0 && settings.driftShare <= 1))
    throw new MonitoringDefinitionError(`driftShare must be in (0, 1], got ${settings.driftShare}`);
  for (const [name, value] of [
    ['minSample', settings.minSample],
    ['scoreBins', settings.scoreBins],
    ['calibrationBins', settings.calibrationBins],
  ] as const)
    if (!Number.isInteger(value) || value < 1) throw new MonitoringDefinitionError(`${name} must be a positive integer, got ${value}`);
  if (!Number.isInteger(settings.sketchK) || settings.sketchK < 8) throw new MonitoringDefinitionError('sketchK must be an integer ≥ 8');
  return Object.freeze(settings);
}

// ---- alert rules ---------------------------------------------------------------------------

/** Which view of the drift stage a drift rule watches. */
export type DriftWindowKind = 'tumbling' | 'last_n';
export type DriftStatistic = 'psi' | 'jensen_shannon' | 'wasserstein' | 'ks';
export type PerformanceMetric = 'auc' | 'log_loss' | 'precision' | 'recall' | 'ece';

/**
 * What a rule measures. Every condition yields one number per evaluation where higher is worse;
 * the rule fires at `fireAt` and clears below `clearBelow` (hysteresis).
 * - `dataset-drift`: the share of the model's inputs that drifted in a window.
 * - `feature-drift`: how many inputs have `statistic` above `above` (clearing counts those above `clearAbove`).
 * - `performance`: how far a window's metric fell from the version's training metric (a rise for log loss and ECE).
 * - `quality`: a source's share of records violating a check in a one-minute window (monitoring.quality).
 * - `fallback-rate`: a model's share of fallback predictions in a window.
 * - `consumer-lag`: records a consumer group has not committed yet (sampled).
 */
export type AlertCondition =
  | { readonly kind: 'dataset-drift'; readonly window: DriftWindowKind }
  | {
      readonly kind: 'feature-drift';
      readonly window: DriftWindowKind;
      readonly statistic: DriftStatistic;
      readonly above: number;
      readonly clearAbove: number;
      /** Firing counts an input only when its record's verdict is DRIFT too (significant after the correction). */
      readonly significant: boolean;
    }
  | { readonly kind: 'performance'; readonly metric: PerformanceMetric; readonly minLabelled: number }
  | { readonly kind: 'quality'; readonly minRecords: number }
  | { readonly kind: 'fallback-rate'; readonly window: DriftWindowKind; readonly minPredictions: number }
  | { readonly kind: 'consumer-lag'; readonly group: string | undefined };

/** What an alert may set off: retraining on the latest window of replayed topics. */
export interface RetrainAction {
  readonly kind: 'retrain';
  /** How much event time before the alert's window end to train on. */
  readonly trainingWindowMs: number;
}

export type Severity = 'INFO' | 'WARNING' | 'CRITICAL';

export interface AlertRule {
  readonly name: string;
  readonly description: string;
  readonly severity: Severity;
  readonly condition: AlertCondition;
  /** Fires when the value reaches this... */
  readonly fireAt: number;
  /** ...and resolves when it falls below this (≤ fireAt): hysteresis, so a value near the line does not flap. */
  readonly clearBelow: number;
  /** Consecutive evaluations at or above fireAt before it fires. */
  readonly forEvaluations: number;
  /** After resolving, the same rule and subject stay quiet this long (event time). */
  readonly cooldownMs: number;
  /** An open alert without a new evaluation for this long (event time of later records) resolves. */
  readonly resolveAfterMs: number;
  /** Only these models (drift, performance, fallback rules) or sources (quality rules); all when empty. */
  readonly subjects: readonly string[];
  readonly action: RetrainAction | undefined;
}

interface RuleInput {
  readonly name: string;
  readonly description?: string;
  readonly severity?: Severity;
  readonly fireAt: number;
  readonly clearBelow?: number;
  readonly forEvaluations?: number;
  readonly cooldown?: Duration;
  readonly resolveAfter?: Duration;
  readonly subjects?: readonly string[];
  readonly action?: RetrainAction;
}

function rule(input: RuleInput, condition: AlertCondition, defaultDescription: string): AlertRule {
  if (!/^[a-z][a-z0-9_]*$/.test(input.name))
    throw new MonitoringDefinitionError(`alert rule name "${input.name}" must be lower-case letters, digits and _`);
  const clearBelow = input.clearBelow ?? input.fireAt;
  if (!Number.isFinite(input.fireAt) || !Number.isFinite(clearBelow) || clearBelow > input.fireAt)
    throw new MonitoringDefinitionError(
      `alert rule ${input.name}: clearBelow (${clearBelow}) must be finite and at most fireAt (${input.fireAt})`,
    );
  const forEvaluations = input.forEvaluations ?? 1;
  if (!Number.isInteger(forEvaluations) || forEvaluations < 1)
    throw new MonitoringDefinitionError(`alert rule ${input.name}: forEvaluations must be a positive integer`);
  return Object.freeze({
    name: input.name,
    description: input.description ?? defaultDescription,
    severity: input.severity ?? 'WARNING',
    condition: Object.freeze(condition),
    fireAt: input.fireAt,
    clearBelow,
    forEvaluations,
    cooldownMs: parseDuration(input.cooldown ?? '1h'),
    resolveAfterMs: parseDuration(input.resolveAfter ?? '6h'),
    subjects: Object.freeze([...(input.subjects ?? [])]),
    action: input.action,
  });
}

/** Fires when the share of drifted inputs of a model in a window reaches `fireAt` (e.g. 0.5). */
export function datasetDriftAlert(input: RuleInput & { readonly window?: DriftWindowKind }): AlertRule {
  return rule(input, { kind: 'dataset-drift', window: input.window ?? 'tumbling' }, `dataset drift share ≥ ${input.fireAt}`);
}

/** Fires when at least `fireAt` inputs have `statistic` above `above` (e.g. PSI > 0.2 on ≥ 2 inputs). */
export function featureDriftAlert(
  input: RuleInput & {
    readonly window?: DriftWindowKind;
    readonly statistic?: DriftStatistic;
    readonly above: number;
    /** Clearing counts inputs above this (default `above`): fewer than clearBelow of them resolve the alert. */
    readonly clearAbove?: number;
    /**
     * Count an input towards firing only when its drift verdict is DRIFT as well: the effect size
     * above `above` and the test significant after the correction for many inputs (default false:
     * the statistic alone). In small windows an effect size alone is noisy; this asks for both.
     */
    readonly significant?: boolean;
  },
): AlertRule {
  const statistic = input.statistic ?? 'psi';
  const clearAbove = input.clearAbove ?? input.above;
  if (clearAbove > input.above) throw new MonitoringDefinitionError(`alert rule ${input.name}: clearAbove must be at most above`);
  return rule(
    input,
    {
      kind: 'feature-drift',
      window: input.window ?? 'tumbling',
      statistic,
      above: input.above,
      clearAbove,
      significant: input.significant ?? false,
    },
    `${statistic} > ${input.above}${input.significant ? ' (and drifted)' : ''} on ≥ ${input.fireAt} inputs`,
  );
}

/** Fires when a window's metric is `fireAt` worse than the version's training metric (AUC drop, log-loss rise, ...). */
export function performanceAlert(input: RuleInput & { readonly metric?: PerformanceMetric; readonly minLabelled?: number }): AlertRule {
  const metric = input.metric ?? 'auc';
  return rule(
    input,
    { kind: 'performance', metric, minLabelled: input.minLabelled ?? 100 },
    `${metric} worse than training by ≥ ${input.fireAt}`,
  );
}

/** Fires when a source's violation rate of a check in a one-minute window reaches `fireAt`. */
export function qualityAlert(input: RuleInput & { readonly minRecords?: number }): AlertRule {
  return rule(input, { kind: 'quality', minRecords: input.minRecords ?? 20 }, `data-quality violation rate ≥ ${input.fireAt}`);
}

/** Fires when a model's share of fallback predictions in a window reaches `fireAt`. */
export function fallbackAlert(input: RuleInput & { readonly window?: DriftWindowKind; readonly minPredictions?: number }): AlertRule {
  return rule(
    input,
    { kind: 'fallback-rate', window: input.window ?? 'tumbling', minPredictions: input.minPredictions ?? 20 },
    `fallback prediction rate ≥ ${input.fireAt}`,
  );
}

/** Fires when a consumer group (all sluice groups by default) lags `fireAt` records behind. */
export function consumerLagAlert(input: RuleInput & { readonly group?: string }): AlertRule {
  return rule(input, { kind: 'consumer-lag', group: input.group }, `consumer lag ≥ ${input.fireAt} records`);
}

/** The action of retraining the model on the latest `window` of event time before the alert (default 6 h). */
export function retrain(input: { readonly window?: Duration } = {}): RetrainAction {
  const trainingWindowMs = parseDuration(input.window ?? '6h');
  if (trainingWindowMs <= 0) throw new MonitoringDefinitionError('the retraining window must be positive');
  return Object.freeze({ kind: 'retrain', trainingWindowMs });
}
