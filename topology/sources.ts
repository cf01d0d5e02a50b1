import { parseDuration } from '../streams/runtime/watermarks.js';

/** A data-quality rule on one field of a source. */
export interface FieldRule {
  /** Null, missing or empty (for strings) is a MISSING violation. */
  readonly required?: boolean;
  readonly min?: number;
  readonly max?: number;
  /** Strings must match (e.g. ISO codes). */
  readonly pattern?: RegExp;
}

/**
 * A source, declared: which schema its producers write (`schemas/avro/raw.<name>.avsc`, with the
 * events schema `events.<name>.avsc`), which field identifies an event, which field is its
 * event time, which is the entity key, and the quality rules ingest applies.
 */
export interface SourceDefinition {
  readonly name: string;
  readonly idField: string;
  readonly eventTimeField: string;
  readonly entityField: string;
  readonly rules: Readonly<Record<string, FieldRule>>;
  /** Event times further ahead of the wall clock than this are FUTURE_TIMESTAMP violations. */
  readonly maxFutureMs: number;
  /** How long (in event time) a seen event id is remembered for duplicate detection. */
  readonly dedupTtlMs: number;
  readonly description: string;
}

export interface SourceInput extends Omit<SourceDefinition, 'maxFutureMs' | 'dedupTtlMs' | 'rules'> {
  readonly rules?: Readonly<Record<string, FieldRule>>;
  readonly maxFuture?: string | number;
  readonly dedupTtl?: string | number;
}

export function source(input: SourceInput): SourceDefinition {
  if (!/^[a-z][a-z0-9_]*$/.test(input.name)) throw new Error(`source name "${input.name}" must be lower-case letters, digits and _`);
  return Object.freeze({
    name: input.name,
    idField: input.idField,
    eventTimeField: input.eventTimeField,
    entityField: input.entityField,
    rules: Object.freeze({ ...(input.rules ?? {}) }),
    maxFutureMs: parseDuration(input.maxFuture ?? '1d'),
    dedupTtlMs: parseDuration(input.dedupTtl ?? '7d'),
    description: input.description,
  });
}

const ISO_CURRENCY = /^[A-Z]{3}$/;
const ISO_COUNTRY = /^[A-Z]{2}$/;

/** The demo's sources (ARCHITECTURE.md): card transactions, web clicks, and chargebacks as labels. */
export const DEMO_SOURCE_DEFINITIONS: readonly SourceDefinition[] = [
  source({
    name: 'transactions',
    description: 'Card payments from the payment system.',
    idField: 'transaction_id',
    eventTimeField: 'timestamp',
    entityField: 'card_id',
    rules: {
      transaction_id: { required: true },
      card_id: { required: true },
      merchant_id: { required: true },
      amount: { required: true, min: 0.01, max: 1_000_000 },
      currency: { required: true, pattern: ISO_CURRENCY },
      country: { required: true, pattern: ISO_COUNTRY },
    },
  }),
  source({
    name: 'clicks',
    description: 'Web interactions of signed-in users.',
    idField: 'click_id',
    eventTimeField: 'timestamp',
    entityField: 'user_id',
    rules: {
      click_id: { required: true },
      user_id: { required: true },
      session_id: { required: true },
      duration_ms: { min: 0, max: 86_400_000 },
    },
  }),
  source({
    name: 'chargebacks',
    description: 'Disputed payments, days after the fact: the fraud label.',
    idField: 'chargeback_id',
    eventTimeField: 'timestamp',
    entityField: 'card_id',
    rules: {
      chargeback_id: { required: true },
      transaction_id: { required: true },
      card_id: { required: true },
      amount: { min: 0.01, max: 1_000_000 },
    },
  }),
];
