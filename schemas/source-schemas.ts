import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SluiceError } from '../common/errors.js';
import { avroType } from './logical-types.js';

/**
 * The two contracts of a source: the raw schema its producers write (`raw.<source>`), declared
 * by the user, and the events schema ingest writes (`events.<source>`), derived from it: the raw
 * record's fields, then the envelope ingest adds — `event_id`, `event_time`, `ingest_time`.
 */
export type AvroRecordSchema = Readonly<Record<string, unknown>> & {
  readonly type: 'record';
  readonly name: string;
  readonly fields: readonly AvroField[];
};

export interface AvroField {
  readonly name: string;
  readonly type: unknown;
  readonly doc?: string;
  readonly default?: unknown;
}

export class SourceSchemaError extends SluiceError {
  constructor(message: string, options: { readonly cause?: unknown } = {}) {
    super('SLUICE_SOURCE_SCHEMA', message, options);
  }
}

/** The fields ingest adds to every event, after the source's own fields. */
export const ENVELOPE_FIELDS: readonly AvroField[] = [
  { name: 'event_id', type: 'string', doc: 'Stable identity of the event, assigned by ingest: sinks and dedup key on it.' },
  {
    name: 'event_time',
    type: { type: 'long', logicalType: 'timestamp-millis' },
    doc: "Event time assigned by ingest (the source's timestamp field); windows and point-in-time joins use it.",
  },
  {
    name: 'ingest_time',
    type: { type: 'long', logicalType: 'timestamp-millis' },
    doc: 'When ingest accepted the event (processing time).',
  },
];

/** Reads an .avsc file (a path or file URL) synchronously: declarations call it once, at load time. */
export function readAvroSchema(file: string | URL): AvroRecordSchema {
  const where = file instanceof URL ? fileURLToPath(file) : file;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(where, 'utf8'));
  } catch (cause) {
    throw new SourceSchemaError(`cannot read the Avro schema ${where}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
  return checkRecordSchema(parsed, where);
}

/** Checks that a value is a valid Avro record schema (avsc parses it) and returns it typed. */
export function checkRecordSchema(schema: unknown, where: string): AvroRecordSchema {
  if (typeof schema !== 'object' || schema === null || (schema as { type?: unknown }).type !== 'record') {
    throw new SourceSchemaError(`${where}: a source's schema must be an Avro record ({"type": "record", "name": ..., "fields": [...]})`);
  }
  try {
    avroType(schema);
  } catch (cause) {
    throw new SourceSchemaError(`${where} is not a valid Avro schema: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
  return schema as AvroRecordSchema;
}

/**
 * The events schema of a source: `<Name>Event` in namespace `dev.sluice.events`, with the raw
 * fields (named types keep their own namespace, so they stay the same types) and the envelope.
 */
export function deriveEventsSchema(raw: AvroRecordSchema, sourceName: string): AvroRecordSchema {
  const taken = raw.fields.find((field) => ENVELOPE_FIELDS.some((envelope) => envelope.name === field.name));
  if (taken)
    throw new SourceSchemaError(
      `source ${sourceName}: field "${taken.name}" is reserved for the events envelope (event_id, event_time, ingest_time); rename it`,
    );
  const namespace = typeof raw.namespace === 'string' ? raw.namespace : undefined;
  const events = {
    type: 'record' as const,
    name: `${raw.name.split('.').at(-1) ?? raw.name}Event`,
    namespace: 'dev.sluice.events',
    doc: `A validated, deduplicated ${sourceName} event: the value of events.${sourceName}. The source's fields, then the envelope that ingest adds.`,
    fields: [...raw.fields.map((field) => ({ ...field, type: qualifyNamedTypes(field.type, namespace) })), ...ENVELOPE_FIELDS],
  };
  avroType(events);
  return events;
}

/**
 * Named types (records, enums, fixed) declared inside the raw schema get their namespace spelled
 * out, so that moving them under the events record's namespace keeps their full names.
 */
function qualifyNamedTypes(type: unknown, namespace: string | undefined): unknown {
  if (Array.isArray(type)) return type.map((branch) => qualifyNamedTypes(branch, namespace));
  if (typeof type !== 'object' || type === null) return type;
  const node = type as Record<string, unknown>;
  const named = node.type === 'record' || node.type === 'enum' || node.type === 'fixed';
  const own = typeof node.namespace === 'string' ? node.namespace : namespace;
  const qualified: Record<string, unknown> = { ...node };
  if (named && own !== undefined && typeof node.name === 'string' && !node.name.includes('.')) qualified.namespace = own;
  if (node.type === 'record' && Array.isArray(node.fields)) {
    qualified.fields = (node.fields as AvroField[]).map((field) => ({ ...field, type: qualifyNamedTypes(field.type, own) }));
  }
  if (node.type === 'array') qualified.items = qualifyNamedTypes(node.items, own);
  if (node.type === 'map') qualified.values = qualifyNamedTypes(node.values, own);
  return qualified;
}
