import type avro from 'avsc';
import type { Logger } from 'pino';
import { errorMessage } from '../../common/errors.js';
import type { MetricsRegistry } from '../../common/metrics.js';
import { avroType, loadAvsc, type AvroSerde } from '../../schemas/index.js';
import type { AlertRecord } from '../../monitoring/index.js';
import type { AlertRule, RetrainAction } from '../../topology/monitoring.js';
import { ValidationError, type OutputRecord, type StageDefinition } from '../runtime/index.js';
import { monitoringMetrics } from './metrics.js';

/**
 * Alert actions: each FIRING alert of monitoring.alerts whose rule names an action runs it — today
 * retraining the model — in a consumer group of its own (the alerts stage never waits for a
 * training), and its outcome goes to monitoring.actions, linking the alert, the model version
 * trained and its run. Exactly once for the records; the action itself must be idempotent per
 * alert (the retrain executor finds a version already trained for the alert and reports it).
 */
export interface ActionOutcome {
  readonly status: 'SUCCEEDED' | 'FAILED' | 'SKIPPED';
  readonly version: number | null;
  readonly aliases: readonly string[];
  readonly runId: string | null;
  readonly from: number | null;
  readonly to: number | null;
  readonly metrics: Readonly<Record<string, number>>;
  readonly message: string;
}

/** Retrains a model for an alert (the composition root provides it: the train job lives above the stages). */
export type RetrainExecutor = (alert: AlertRecord, action: RetrainAction) => Promise<ActionOutcome>;

export interface ActionsOptions {
  readonly rules: readonly AlertRule[];
  readonly retrain: RetrainExecutor;
  readonly topicPrefix: string;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  /** Registered schema id of monitoring.actions values. */
  readonly schemaId: number;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  readonly now?: () => number;
}

export const ACTIONS_STAGE = 'monitoring-alert-actions';

export function actionsStage(options: ActionsOptions): StageDefinition<AlertRecord> {
  const reader = options.serdeFor(avroType(loadAvsc('monitoring.alerts')));
  const encoder = options.serdeFor();
  const outputTopic = `${options.topicPrefix}monitoring.actions`;
  const metrics = monitoringMetrics(options.metrics);
  const logger = options.logger.child({ stage: ACTIONS_STAGE });
  const now = options.now ?? Date.now;
  return {
    name: ACTIONS_STAGE,
    inputs: [`${options.topicPrefix}monitoring.alerts`],
    decode: async (raw) => {
      if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'an alert without a value');
      return (await reader.decode(raw.value)) as AlertRecord;
    },
    eventTime: (alert) => alert.at,
    process: async (record): Promise<OutputRecord[]> => {
      const alert = record.value;
      const rule = options.rules.find((candidate) => candidate.name === alert.rule);
      if (alert.state !== 'FIRING' || !rule?.action || alert.model_name === null) return [];
      let outcome: ActionOutcome;
      try {
        logger.info({ alert: alert.alert_id, model: alert.model_name, action: rule.action.kind }, 'alert action starts');
        outcome = await options.retrain(alert, rule.action);
      } catch (error) {
        outcome = {
          status: 'FAILED',
          version: null,
          aliases: [],
          runId: null,
          from: null,
          to: null,
          metrics: {},
          message: errorMessage(error),
        };
      }
      metrics.actions.inc({ action: rule.action.kind, status: outcome.status });
      logger.info(
        { alert: alert.alert_id, status: outcome.status, version: outcome.version, message: outcome.message },
        'alert action done',
      );
      const report = {
        action_id: `${rule.action.kind}:${alert.alert_id}`,
        alert_id: alert.alert_id,
        rule: alert.rule,
        action: rule.action.kind,
        model_name: alert.model_name,
        status: outcome.status,
        model_version: outcome.version,
        aliases: [...outcome.aliases],
        run_id: outcome.runId,
        train_from: outcome.from,
        train_to: outcome.to,
        metrics: Object.fromEntries(Object.entries(outcome.metrics).filter(([, value]) => Number.isFinite(value))),
        message: outcome.message,
        at: now(),
      };
      return [{ topic: outputTopic, key: alert.alert_id, value: await encoder.encode(options.schemaId, report) }];
    },
  };
}
