import type { AlertRule, DriftStatistic, PerformanceMetric } from '../../topology/monitoring.js';
import type { DriftRecord } from '../drift/records.js';
import type { PerformanceRecord } from '../performance/merger.js';
import type { ProcessorStore } from '../state.js';

/**
 * Alert rules over monitoring records, as plain code over a store. Each rule turns a record (or,
 * for feature-drift rules, a whole window of feature records, complete when its dataset record
 * comes) into an evaluation: a value where higher is worse, for a subject (a model, a source and
 * check, a consumer group). Per (rule, subject) a small state machine controls fatigue:
 *
 * - fires when the value reaches `fireAt` for `forEvaluations` evaluations in a row, unless the
 *   subject is cooling down after its last resolution;
 * - while open, it never fires again (one FIRING per episode: dedup);
 * - resolves when the value falls below `clearBelow` (hysteresis: between the two it stays as it
 *   is), or when no evaluation has come for `resolveAfterMs` of event time;
 * - a resolution starts a cooldown of `cooldownMs` before the next episode may fire.
 *
 * Times are event times (window ends), so replays fire and resolve the same alerts.
 */

/** A monitoring.quality record. */
export interface QualityRecord {
  readonly source: string;
  readonly field: string | null;
  readonly check: string;
  readonly window_start: number;
  readonly window_end: number;
  readonly records: number;
  readonly violations: number;
}

/** A monitoring.lag record. */
export interface LagRecord {
  readonly group: string;
  readonly lag: number;
  readonly topics: readonly string[];
  readonly at: number;
}

export type AlertInput =
  | { readonly kind: 'drift'; readonly record: DriftRecord }
  | { readonly kind: 'performance'; readonly record: PerformanceRecord }
  | { readonly kind: 'quality'; readonly record: QualityRecord }
  | { readonly kind: 'lag'; readonly record: LagRecord };

/** A monitoring.alerts record (schemas/avro/monitoring.alerts.avsc). */
export interface AlertRecord {
  readonly alert_id: string;
  readonly rule: string;
  readonly state: 'FIRING' | 'RESOLVED';
  readonly severity: 'INFO' | 'WARNING' | 'CRITICAL';
  readonly model_name: string | null;
  readonly feature: string | null;
  readonly value: number;
  readonly threshold: number;
  readonly message: string;
  readonly at: number;
  readonly subject: string;
  readonly condition: string;
  readonly clear_threshold: number | null;
  readonly model_version: number | null;
  readonly window_kind: string | null;
  readonly window_start: number | null;
  readonly window_end: number | null;
  readonly fired_at: number | null;
  readonly action: string | null;
  readonly evidence: string;
}

interface Evaluation {
  readonly rule: AlertRule;
  readonly subject: string;
  /** Compared with fireAt. */
  readonly value: number;
  /** Compared with clearBelow (the same value for most rules). */
  readonly clearValue: number;
  readonly at: number;
  readonly model: string | null;
  readonly version: number | null;
  readonly feature: string | null;
  readonly window: { readonly kind: string; readonly start: number; readonly end: number } | null;
  readonly evidence: Readonly<Record<string, unknown>>;
}

interface SubjectState {
  firing: boolean;
  breaches: number;
  alertId: string | null;
  firedAt: number | null;
  lastEvaluation: number;
  lastValue: number;
  cooldownUntil: number;
  model: string | null;
  version: number | null;
}

/** Feature records of a window, waiting for its dataset record. */
interface WindowFeatures {
  readonly values: Record<string, number>;
  /** Inputs whose verdict in the window is DRIFT (absent in state written before it existed). */
  readonly drifted?: string[];
}

type Stored = SubjectState | WindowFeatures | string[] | number;

const OPEN = 'open';
const CLOCK = 'clock';

export class AlertEvaluator {
  constructor(
    private readonly rules: readonly AlertRule[],
    private readonly store: ProcessorStore<Stored>,
  ) {}

  /** One monitoring record; returns the alerts it fires or resolves. */
  async add(input: AlertInput): Promise<AlertRecord[]> {
    const evaluations: Evaluation[] = [];
    for (const rule of this.rules) evaluations.push(...(await this.evaluate(rule, input)));
    const records: AlertRecord[] = [];
    const open = ((await this.store.get(OPEN)) as string[] | undefined) ?? [];
    let openChanged = false;
    for (const evaluation of evaluations) {
      const key = `a:${evaluation.rule.name}:${evaluation.subject}`;
      const record = await this.transition(key, evaluation);
      if (!record) continue;
      records.push(record);
      if (record.state === 'FIRING' && !open.includes(key)) open.push(key);
      if (record.state === 'RESOLVED' && open.includes(key)) open.splice(open.indexOf(key), 1);
      openChanged = true;
    }
    // Open alerts nothing has evaluated for a while resolve, by the event time of what comes in.
    const time = timeOf(input);
    const clock = Math.max(((await this.store.get(CLOCK)) as number | undefined) ?? Number.NEGATIVE_INFINITY, time);
    this.store.put(CLOCK, clock);
    for (const key of [...open]) {
      const state = (await this.store.get(key)) as SubjectState | undefined;
      const rule = this.rules.find((candidate) => key.startsWith(`a:${candidate.name}:`));
      if (!state || !rule) {
        open.splice(open.indexOf(key), 1);
        openChanged = true;
        continue;
      }
      if (clock - state.lastEvaluation < rule.resolveAfterMs) continue;
      records.push(this.resolve(state, rule, key.slice(`a:${rule.name}:`.length), clock, state.lastValue, 'stale', null));
      this.store.put(key, state);
      open.splice(open.indexOf(key), 1);
      openChanged = true;
    }
    if (openChanged) this.store.put(OPEN, open);
    return records;
  }

  private async transition(key: string, evaluation: Evaluation): Promise<AlertRecord | undefined> {
    const { rule } = evaluation;
    const state = ((await this.store.get(key)) as SubjectState | undefined) ?? {
      firing: false,
      breaches: 0,
      alertId: null,
      firedAt: null,
      lastEvaluation: Number.NEGATIVE_INFINITY,
      lastValue: 0,
      cooldownUntil: Number.NEGATIVE_INFINITY,
      model: evaluation.model,
      version: evaluation.version,
    };
    state.lastEvaluation = Math.max(state.lastEvaluation, evaluation.at);
    state.lastValue = evaluation.value;
    let record: AlertRecord | undefined;
    if (state.firing) {
      if (evaluation.clearValue < rule.clearBelow)
        record = this.resolve(state, rule, evaluation.subject, evaluation.at, evaluation.clearValue, 'cleared', evaluation);
    } else if (evaluation.value >= rule.fireAt) {
      state.breaches++;
      if (state.breaches >= rule.forEvaluations && evaluation.at >= state.cooldownUntil) {
        state.firing = true;
        state.alertId = `${rule.name}:${evaluation.subject}:${evaluation.at}`;
        state.firedAt = evaluation.at;
        state.model = evaluation.model;
        state.version = evaluation.version;
        record = {
          ...this.common(rule, evaluation.subject, evaluation),
          alert_id: state.alertId,
          state: 'FIRING',
          value: evaluation.value,
          message: `${rule.name}: ${rule.description} — ${evaluation.subject} at ${format(evaluation.value)} (fires at ${rule.fireAt}, clears below ${rule.clearBelow})`,
          fired_at: null,
          action: rule.action?.kind ?? null,
        };
      }
    } else {
      state.breaches = 0;
    }
    this.store.put(key, state);
    return record;
  }

  private resolve(
    state: SubjectState,
    rule: AlertRule,
    subject: string,
    at: number,
    value: number,
    why: 'cleared' | 'stale',
    evaluation: Evaluation | null,
  ): AlertRecord {
    const record: AlertRecord = {
      ...this.common(rule, subject, evaluation),
      model_name: evaluation?.model ?? state.model,
      model_version: evaluation?.version ?? state.version,
      alert_id: state.alertId ?? `${rule.name}:${subject}:${at}`,
      state: 'RESOLVED',
      value,
      at,
      message:
        why === 'cleared'
          ? `${rule.name}: ${subject} back at ${format(value)}, below ${rule.clearBelow}`
          : `${rule.name}: no evaluation of ${subject} for ${Math.round(rule.resolveAfterMs / 60_000)} min of event time`,
      fired_at: state.firedAt,
      action: null,
    };
    state.firing = false;
    state.breaches = 0;
    state.alertId = null;
    state.firedAt = null;
    state.cooldownUntil = at + rule.cooldownMs;
    return record;
  }

  private common(
    rule: AlertRule,
    subject: string,
    evaluation: Evaluation | null,
  ): Omit<AlertRecord, 'alert_id' | 'state' | 'value' | 'message' | 'fired_at' | 'action'> {
    return {
      rule: rule.name,
      severity: rule.severity,
      model_name: evaluation?.model ?? null,
      feature: evaluation?.feature ?? null,
      threshold: rule.fireAt,
      at: evaluation?.at ?? 0,
      subject,
      condition: rule.condition.kind,
      clear_threshold: rule.clearBelow,
      model_version: evaluation?.version ?? null,
      window_kind: evaluation?.window?.kind ?? null,
      window_start: evaluation?.window?.start ?? null,
      window_end: evaluation?.window?.end ?? null,
      evidence: JSON.stringify(evaluation?.evidence ?? {}),
    };
  }

  /** What a rule makes of a record: nothing, or evaluations (feature-drift rules collect a window first). */
  private async evaluate(rule: AlertRule, input: AlertInput): Promise<Evaluation[]> {
    const { condition } = rule;
    const applies = (subject: string): boolean => rule.subjects.length === 0 || rule.subjects.includes(subject);
    switch (condition.kind) {
      case 'dataset-drift':
      case 'fallback-rate':
      case 'feature-drift': {
        if (input.kind !== 'drift') return [];
        const { record } = input;
        if (!applies(record.model_name) || record.window_kind !== condition.window.toUpperCase()) return [];
        const window = { kind: record.window_kind, start: record.window_start, end: record.window_end };
        const base = {
          rule,
          subject: record.model_name,
          at: record.window_end,
          model: record.model_name,
          version: record.model_version,
          window,
        };
        if (condition.kind === 'feature-drift') return this.featureDrift(rule, condition, record, base);
        if (record.feature_kind !== 'dataset') return [];
        if (condition.kind === 'dataset-drift') {
          if (record.drift_share === null) return [];
          return [
            {
              ...base,
              value: record.drift_share,
              clearValue: record.drift_share,
              feature: null,
              evidence: {
                drifted_features: record.drifted_features,
                tested_features: record.tested_features,
                predictions: record.predictions,
              },
            },
          ];
        }
        if (record.predictions < condition.minPredictions) return [];
        const rate = record.fallback_predictions / record.predictions;
        return [
          {
            ...base,
            value: rate,
            clearValue: rate,
            feature: null,
            evidence: { fallbacks: record.fallback_predictions, predictions: record.predictions },
          },
        ];
      }
      case 'performance': {
        if (input.kind !== 'performance') return [];
        const { record } = input;
        if (record.stage !== 'FINAL' || !applies(record.model_name) || record.labelled < condition.minLabelled) return [];
        const drop = performanceDrop(condition.metric, record);
        if (drop === null) return [];
        return [
          {
            rule,
            subject: record.model_name,
            value: drop,
            clearValue: drop,
            at: record.window_end,
            model: record.model_name,
            version: record.model_version,
            feature: null,
            window: { kind: 'TUMBLING', start: record.window_start, end: record.window_end },
            evidence: {
              metric: condition.metric,
              window: record[condition.metric],
              labelled: record.labelled,
              positives: record.positives,
            },
          },
        ];
      }
      case 'quality': {
        if (input.kind !== 'quality') return [];
        const { record } = input;
        if (!applies(record.source) || record.records < condition.minRecords) return [];
        const rate = record.violations / record.records;
        return [
          {
            rule,
            subject: `${record.source}/${record.field ?? '*'}/${record.check}`,
            value: rate,
            clearValue: rate,
            at: record.window_end,
            model: null,
            version: null,
            feature: record.field,
            window: { kind: 'TUMBLING', start: record.window_start, end: record.window_end },
            evidence: { records: record.records, violations: record.violations, check: record.check },
          },
        ];
      }
      case 'consumer-lag': {
        if (input.kind !== 'lag') return [];
        const { record } = input;
        if (condition.group !== undefined && condition.group !== record.group) return [];
        return [
          {
            rule,
            subject: record.group,
            value: record.lag,
            clearValue: record.lag,
            at: record.at,
            model: null,
            version: null,
            feature: null,
            window: null,
            evidence: { topics: record.topics },
          },
        ];
      }
    }
  }

  private async featureDrift(
    rule: AlertRule,
    condition: Extract<AlertRule['condition'], { kind: 'feature-drift' }>,
    record: DriftRecord,
    base: Pick<Evaluation, 'rule' | 'subject' | 'at' | 'model' | 'version' | 'window'>,
  ): Promise<Evaluation[]> {
    const key = `w:${rule.name}:${record.model_name}:${record.model_version}:${record.window_kind}:${record.window_start}:${record.last_n_round ?? ''}`;
    if (record.feature_kind === 'numeric' || record.feature_kind === 'categorical') {
      const value = statistic(condition.statistic, record);
      if (value === null) return [];
      const stored = ((await this.store.get(key)) as WindowFeatures | undefined) ?? { values: {} };
      const collected = { values: { ...stored.values, [record.feature]: value }, drifted: [...(stored.drifted ?? [])] };
      if (record.verdict === 'DRIFT') collected.drifted.push(record.feature);
      this.store.put(key, collected);
      return [];
    }
    if (record.feature_kind !== 'dataset') return [];
    const collected = ((await this.store.get(key)) as WindowFeatures | undefined) ?? { values: {} };
    this.store.delete(key);
    const values = Object.entries(collected.values);
    // No input had the statistic (a version without a reference, e.g. predictions made before the
    // first champion, or a window too small): no evidence either way, so it neither fires nor
    // clears — otherwise such a version's records would resolve another version's open alert.
    if (values.length === 0) return [];
    const drifted = new Set(collected.drifted ?? []);
    const above = values
      .filter(([feature, value]) => value > condition.above && (!condition.significant || drifted.has(feature)))
      .map(([feature]) => feature)
      .sort();
    const clearAbove = values.filter(([, value]) => value > condition.clearAbove).length;
    return [
      {
        ...base,
        value: above.length,
        clearValue: clearAbove,
        feature: above.join(',') || null,
        evidence: {
          statistic: condition.statistic,
          above: condition.above,
          features: Object.fromEntries(values.sort(([a], [b]) => (a < b ? -1 : 1))),
        },
      },
    ];
  }
}

function statistic(name: DriftStatistic, record: DriftRecord): number | null {
  switch (name) {
    case 'psi':
      return record.psi;
    case 'jensen_shannon':
      return record.jensen_shannon;
    case 'wasserstein':
      return record.wasserstein;
    case 'ks':
      return record.ks_statistic;
  }
}

/** How much worse a window is than training: a fall for AUC, precision, recall; a rise for log loss and ECE. */
function performanceDrop(metric: PerformanceMetric, record: PerformanceRecord): number | null {
  const live = record[metric];
  const trained = {
    auc: record.training_auc,
    log_loss: record.training_log_loss,
    precision: record.training_precision,
    recall: record.training_recall,
    ece: record.training_ece,
  }[metric];
  if (live === null || trained === null) return null;
  return metric === 'log_loss' || metric === 'ece' ? live - trained : trained - live;
}

function timeOf(input: AlertInput): number {
  switch (input.kind) {
    case 'drift':
    case 'performance':
    case 'quality':
      return input.record.window_end;
    case 'lag':
      return input.record.at;
  }
}

function format(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(3);
}
