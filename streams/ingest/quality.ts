import type { SourceDefinition } from '../../topology/sources.js';

/** Checks of the monitoring.quality contract (QualityCheck enum). */
export type QualityCheck =
  'MISSING' | 'INVALID_TYPE' | 'OUT_OF_RANGE' | 'SCHEMA_VIOLATION' | 'UNDECODABLE' | 'FUTURE_TIMESTAMP' | 'DUPLICATE' | 'OTHER';

export interface QualityViolation {
  readonly field: string | null;
  readonly check: QualityCheck;
  readonly message: string;
}

type Rules = SourceDefinition['rules'];
const ruleLists = new WeakMap<Rules, [string, Rules[string]][]>();

/** A source's rules as a list, made once per definition (not per record). */
function rulesOf(source: SourceDefinition): readonly [string, Rules[string]][] {
  let list = ruleLists.get(source.rules);
  if (!list) {
    list = Object.entries(source.rules);
    ruleLists.set(source.rules, list);
  }
  return list;
}

/**
 * Applies a source's rules to a decoded value: required fields, numeric ranges, string patterns,
 * and an event time that is a sane number not too far in the future. Plain code: returns every
 * violation, empty when the value is clean.
 */
export function checkQuality(source: SourceDefinition, value: Readonly<Record<string, unknown>>, now: number): QualityViolation[] {
  const violations: QualityViolation[] = [];
  for (const [field, rule] of rulesOf(source)) {
    const fieldValue = value[field];
    if (fieldValue === undefined || fieldValue === null || (typeof fieldValue === 'string' && fieldValue.trim() === '')) {
      if (rule.required) violations.push({ field, check: 'MISSING', message: `${field} is required` });
      continue;
    }
    if (rule.min !== undefined || rule.max !== undefined) {
      if (typeof fieldValue !== 'number' || !Number.isFinite(fieldValue)) {
        violations.push({ field, check: 'INVALID_TYPE', message: `${field} must be a finite number` });
      } else if ((rule.min !== undefined && fieldValue < rule.min) || (rule.max !== undefined && fieldValue > rule.max)) {
        violations.push({
          field,
          check: 'OUT_OF_RANGE',
          message: `${field} ${fieldValue} is outside [${rule.min ?? '-∞'}, ${rule.max ?? '∞'}]`,
        });
      }
    }
    if (rule.pattern && (typeof fieldValue !== 'string' || !rule.pattern.test(fieldValue))) {
      violations.push({
        field,
        check: 'OUT_OF_RANGE',
        message: `${field} ${JSON.stringify(fieldValue)} does not match ${String(rule.pattern)}`,
      });
    }
  }
  const eventTime = value[source.eventTimeField];
  if (typeof eventTime !== 'number' || !Number.isFinite(eventTime) || eventTime < 0) {
    violations.push({
      field: source.eventTimeField,
      check: 'INVALID_TYPE',
      message: `${source.eventTimeField} must be epoch milliseconds`,
    });
  } else if (eventTime > now + source.maxFutureMs) {
    violations.push({
      field: source.eventTimeField,
      check: 'FUTURE_TIMESTAMP',
      message: `${source.eventTimeField} ${new Date(eventTime).toISOString()} is more than ${source.maxFutureMs} ms ahead of now`,
    });
  }
  return violations;
}
