import { parseDuration } from '../common/durations.js';
import { checkRecordSchema, deriveEventsSchema, readAvroSchema, type AvroRecordSchema } from '../schemas/source-schemas.js';

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
 * A source, declared: which schema its producers write (`raw.<name>`; the events schema of
 * `events.<name>` is derived from it), which field identifies an event, which field is its
 * event time, which is the entity key (and the key producers must use), and the quality rules
 * ingest applies.
 */
export interface SourceDefinition {
  readonly name: string;
  /** The Avro record schema of `raw.<name>` values. */
  readonly rawSchema: AvroRecordSchema;
  /** The schema of `events.<name>` values: the raw fields plus event_id, event_time, ingest_time. */
  readonly eventsSchema: AvroRecordSchema;
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

export interface SourceInput extends Omit<SourceDefinition, 'maxFutureMs' | 'dedupTtlMs' | 'rules' | 'rawSchema' | 'eventsSchema'> {
  /**
   * The raw Avro record schema: the parsed schema, or its .avsc file as a URL or an absolute
   * path — `new URL('./schemas/raw.trips.avsc', import.meta.url)` beside the topology file.
   */
  readonly schema: AvroRecordSchema | Readonly<Record<string, unknown>> | URL | string;
  readonly rules?: Readonly<Record<string, FieldRule>>;
  readonly maxFuture?: string | number;
  readonly dedupTtl?: string | number;
}

export function source(input: SourceInput): SourceDefinition {
  if (!/^[a-z][a-z0-9_]*$/.test(input.name)) throw new Error(`source name "${input.name}" must be lower-case letters, digits and _`);
  const rawSchema =
    typeof input.schema === 'string' || input.schema instanceof URL
      ? readAvroSchema(input.schema)
      : checkRecordSchema(input.schema, `the schema of source ${input.name}`);
  const fields = new Set(rawSchema.fields.map((field) => field.name));
  for (const [role, field] of [
    ['idField', input.idField],
    ['eventTimeField', input.eventTimeField],
    ['entityField', input.entityField],
  ] as const) {
    if (!fields.has(field))
      throw new Error(`source ${input.name}: ${role} "${field}" is not a field of its schema (fields: ${[...fields].join(', ')})`);
  }
  for (const field of Object.keys(input.rules ?? {})) {
    if (!fields.has(field)) throw new Error(`source ${input.name}: a rule names "${field}", which is not a field of its schema`);
  }
  return Object.freeze({
    name: input.name,
    rawSchema,
    eventsSchema: deriveEventsSchema(rawSchema, input.name),
    idField: input.idField,
    eventTimeField: input.eventTimeField,
    entityField: input.entityField,
    rules: Object.freeze({ ...(input.rules ?? {}) }),
    maxFutureMs: parseDuration(input.maxFuture ?? '1d'),
    dedupTtlMs: parseDuration(input.dedupTtl ?? '7d'),
    description: input.description,
  });
}
