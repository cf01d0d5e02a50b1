import type avro from 'avsc';
import { DeserializationError } from './errors.js';
import { DecimalType } from './logical-types.js';
import type { AvroSerde } from './serde.js';

/** Where a schema violation is, and what it is. */
export interface SchemaViolation {
  readonly field: string;
  readonly message: string;
}

/** A JSON value that does not match the Avro schema (wrong types, missing required fields). */
export class SchemaViolationError extends DeserializationError {
  readonly violations: readonly SchemaViolation[];

  constructor(violations: readonly SchemaViolation[]) {
    super(
      'SLUICE_SCHEMA_VIOLATION',
      `does not match the schema: ${violations.map((violation) => `${violation.field} ${violation.message}`).join('; ')}`,
      {
        context: { fields: violations.map((violation) => violation.field) },
      },
    );
    this.violations = violations;
  }
}

interface RecordSchemaField {
  readonly name: string;
  readonly type: avro.Type;
  defaultValue(): unknown;
}

/**
 * Decodes a message value that is either Avro in the Confluent wire format (first byte 0) or a
 * JSON object, into the reader type's shape. JSON is validated against the reader schema: fields
 * it omits take their defaults, anything else that does not fit is a SchemaViolationError naming
 * the fields. Every failure is a DeserializationError with a stable code, for the dead-letter topic.
 */
export async function decodeAvroOrJson(bytes: Buffer | null, serde: AvroSerde, reader: avro.Type): Promise<Record<string, unknown>> {
  return await decodeAvroOrJsonNow(bytes, serde, reader);
}

/**
 * `decodeAvroOrJson` without a promise where none is needed (JSON, or Avro of a writer schema
 * already loaded); a promise while the writer schema is fetched. Failures are thrown or rejected.
 */
export function decodeAvroOrJsonNow(
  bytes: Buffer | null,
  serde: AvroSerde,
  reader: avro.Type,
): Record<string, unknown> | Promise<Record<string, unknown>> {
  if (bytes === null || bytes.length === 0) throw new DeserializationError('SLUICE_EMPTY_VALUE', 'the message has no value');
  if (bytes[0] === 0) return serde.decodeNow(bytes) as Record<string, unknown> | Promise<Record<string, unknown>>;
  return parseJsonRecord(bytes, reader);
}

export function parseJsonRecord(bytes: Buffer, reader: avro.Type): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (cause) {
    const first = bytes[0] ?? 0;
    const what =
      first === 0x7b || first === 0x5b || first === 0x20
        ? 'malformed JSON'
        : `neither Avro (magic byte 0) nor JSON (first byte 0x${first.toString(16).padStart(2, '0')})`;
    throw new DeserializationError('SLUICE_UNDECODABLE', `${what}: ${(cause as Error).message}`, { cause });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DeserializationError(
      'SLUICE_JSON_NOT_OBJECT',
      `JSON value is ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`}, not an object`,
    );
  }
  const value = withDefaults(parsed as Record<string, unknown>, reader);
  // Most records are valid: checked without the hook first (no closure, no path per value); an
  // invalid one is checked again to name its violations.
  if (reader.isValid(value)) return value;
  const fields = recordFields(reader);
  const violations: SchemaViolation[] = [];
  const valid = reader.isValid(value, {
    errorHook: (path: string[], fieldValue: unknown, type: avro.Type) => {
      // The hook sees a logical type's underlying type; the declared field type says more.
      const declared = path.length === 1 ? fields.find((field) => field.name === path[0])?.type : undefined;
      violations.push({
        field: path.join('.') || '(record)',
        message: fieldValue === undefined ? 'is missing' : `is ${preview(fieldValue)}, expected ${describeType(declared ?? type)}`,
      });
    },
  });
  if (!valid) throw new SchemaViolationError(violations);
  return value;
}

function recordFields(reader: avro.Type): readonly RecordSchemaField[] {
  return (reader as unknown as { fields?: RecordSchemaField[] }).fields ?? [];
}

function withDefaults(value: Record<string, unknown>, reader: avro.Type): Record<string, unknown> {
  const fields = recordFields(reader);
  const filled: Record<string, unknown> = {};
  for (const field of fields) {
    if (value[field.name] === undefined) {
      const fallback = field.defaultValue();
      if (fallback !== undefined) filled[field.name] = fallback;
    } else {
      filled[field.name] = value[field.name];
    }
  }
  return filled;
}

function describeType(type: avro.Type): string {
  if (type instanceof DecimalType) return type.describe();
  if (type.typeName === 'logical:timestamp-millis') return 'epoch milliseconds (long)';
  const schema = type.schema() as unknown;
  if (typeof schema === 'string') return schema;
  if (Array.isArray(schema))
    return schema.map((branch) => (typeof branch === 'string' ? branch : (branch as { type: string }).type)).join(' or ');
  const object = schema as { type?: string; symbols?: string[] };
  if (object.symbols) return `one of ${object.symbols.join(', ')}`;
  return object.type ?? 'a value of the schema';
}

/** A short rendering of a JSON value for messages. */
function preview(value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  return (text ?? typeof value).slice(0, 60);
}
