import type avro from 'avsc';
import type { MetricsRegistry } from '../../common/metrics.js';
import { avroType, loadAvsc, type AvroSerde } from '../../schemas/index.js';
import { jsonSerde } from '../../state/index.js';
import {
  AlertEvaluator,
  type AlertInput,
  type DriftRecord,
  type LagRecord,
  type PerformanceRecord,
  type QualityRecord,
} from '../../monitoring/index.js';
import type { AlertRule } from '../../topology/monitoring.js';
import { ValidationError, type OutputRecord, type RawRecord, type StageDefinition } from '../runtime/index.js';
import { monitoringMetrics } from './metrics.js';

/**
 * The alerts stage (`monitoring.alerts`): the topology's rules over monitoring.drift,
 * monitoring.performance, monitoring.quality and monitoring.lag → monitoring.alerts, exactly once.
 * Each (rule, subject) has its state in the task of the subject's partition (records are keyed by
 * model, source or group), in a RocksDB store with a changelog: one FIRING per episode, then its
 * RESOLVED. Delivery beyond the topic (ClickHouse by the sink, the webhook, actions) reads the topic.
 */
export interface AlertsStageOptions {
  readonly rules: readonly AlertRule[];
  readonly topicPrefix: string;
  readonly serdeFor: (reader?: avro.Type) => AvroSerde;
  /** Registered schema id of monitoring.alerts values. */
  readonly schemaId: number;
  readonly metrics: MetricsRegistry;
}

export const ALERTS_STAGE = 'monitoring-alerts';

/** The topics the rules read (only those some rule needs). */
export function alertInputs(rules: readonly AlertRule[], prefix: string): string[] {
  const kinds = new Set(rules.map((rule) => rule.condition.kind));
  const topics: string[] = [];
  if (kinds.has('dataset-drift') || kinds.has('feature-drift') || kinds.has('fallback-rate')) topics.push(`${prefix}monitoring.drift`);
  if (kinds.has('performance')) topics.push(`${prefix}monitoring.performance`);
  if (kinds.has('quality')) topics.push(`${prefix}monitoring.quality`);
  if (kinds.has('consumer-lag')) topics.push(`${prefix}monitoring.lag`);
  return topics;
}

export function alertsStage(options: AlertsStageOptions): StageDefinition<AlertInput> {
  const { topicPrefix } = options;
  const outputTopic = `${topicPrefix}monitoring.alerts`;
  const encoder = options.serdeFor();
  const metrics = monitoringMetrics(options.metrics);
  const readers = new Map<string, { kind: AlertInput['kind']; serde: AvroSerde }>(
    (
      [
        ['drift', 'monitoring.drift'],
        ['performance', 'monitoring.performance'],
        ['quality', 'monitoring.quality'],
        ['lag', 'monitoring.lag'],
      ] as const
    ).map(([kind, contract]) => [`${topicPrefix}${contract}`, { kind, serde: options.serdeFor(avroType(loadAvsc(contract))) }]),
  );

  // ---- inputs: monitoring records of the kinds the rules read ----------------------------------
  const decode = async (raw: RawRecord): Promise<AlertInput> => {
    const reader = readers.get(raw.topic);
    if (!reader) throw new Error(`the alerts stage does not read ${raw.topic}`);
    if (!raw.value) throw new ValidationError('SCHEMA_VIOLATION', undefined, 'a monitoring record without a value');
    const record = (await reader.serde.decode(raw.value)) as Record<string, unknown>;
    switch (reader.kind) {
      case 'drift':
        return { kind: 'drift', record: record as unknown as DriftRecord };
      case 'performance':
        return { kind: 'performance', record: record as unknown as PerformanceRecord };
      case 'quality':
        return { kind: 'quality', record: record as unknown as QualityRecord };
      case 'lag':
        return { kind: 'lag', record: record as unknown as LagRecord };
    }
  };

  // ---- transformation: the rules' state machines; outputs: alerts firing and resolving ------------
  return {
    name: ALERTS_STAGE,
    inputs: alertInputs(options.rules, topicPrefix),
    decode,
    eventTime: (value) => (value.kind === 'lag' ? value.record.at : value.record.window_end),
    stores: [{ name: 'alerts', kind: 'key-value', serde: jsonSerde<unknown>() }],
    process: async (record, context): Promise<OutputRecord[]> => {
      const evaluator = new AlertEvaluator(options.rules, context.store<ConstructorParameters<typeof AlertEvaluator>[1]>('alerts'));
      const outputs: OutputRecord[] = [];
      for (const alert of await evaluator.add(record.value)) {
        metrics.alerts.inc({ rule: alert.rule, state: alert.state });
        metrics.openAlerts.inc({ rule: alert.rule }, alert.state === 'FIRING' ? 1 : -1);
        outputs.push({
          topic: outputTopic,
          key: `${alert.rule}:${alert.subject}`,
          value: await encoder.encode(options.schemaId, alert),
          headers: { 'sluice.alert_id': alert.alert_id },
        });
      }
      return outputs;
    },
  };
}
