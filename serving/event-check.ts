import type avro from 'avsc';
import { avroType, DecimalType } from '../schemas/index.js';
import type { ModelDefinition } from '../topology/models.js';

/** The largest magnitude a float32 model input holds (onnxruntime scores float32 tensors). */
export const FLOAT32_MAX = 3.4028234663852886e38;

interface RecordField {
  readonly name: string;
  readonly type: avro.Type;
}

/**
 * Checks a `/predict` request's event against the source's raw Avro schema: every field it sends
 * must be a field of the schema, of the schema's type (numbers finite and, for decimals, within
 * their precision), and every event field the model uses must be there (unless its type admits
 * null) and fit the model's float32 input. Returns the problems, each naming its field.
 */
export function eventProblems(model: ModelDefinition, event: Readonly<Record<string, unknown>>): string[] {
  const fields = fieldsOf(model);
  const problems: string[] = [];
  for (const [name, value] of Object.entries(event)) {
    const field = fields.get(name);
    if (!field) {
      problems.push(`event.${name}: not a field of source ${model.source.name} (fields: ${[...fields.keys()].join(', ')})`);
      continue;
    }
    const problem = valueProblem(field.type, value);
    if (problem) problems.push(`event.${name}: ${problem}`);
  }
  for (const name of model.fields) {
    const value = event[name];
    const type = fields.get(name)?.type;
    if ((value === undefined || value === null) && type && !admitsNull(type)) {
      problems.push(`event.${name}: missing; model ${model.name} uses it (${describe(type)})`);
    } else if (typeof value === 'number' && Math.abs(value) > FLOAT32_MAX) {
      problems.push(`event.${name}: ${value} is beyond what the model's float32 input holds (±${FLOAT32_MAX.toExponential(3)})`);
    }
  }
  return [...new Set(problems)];
}

const cache = new WeakMap<ModelDefinition, Map<string, RecordField>>();

function fieldsOf(model: ModelDefinition): Map<string, RecordField> {
  let fields = cache.get(model);
  if (!fields) {
    const type = avroType(model.source.rawSchema) as unknown as { fields: RecordField[] };
    fields = new Map(type.fields.map((field) => [field.name, field]));
    cache.set(model, fields);
  }
  return fields;
}

function valueProblem(type: avro.Type, value: unknown): string | undefined {
  if (typeof value === 'number' && !Number.isFinite(value)) return `${String(value)} is not a finite number`;
  if (type.isValid(value) && finiteEverywhere(value)) return undefined;
  return `${preview(value)} is not ${describe(type)}`;
}

/** Avro's double accepts NaN and Infinity; a request may not carry them anywhere. */
function finiteEverywhere(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(finiteEverywhere);
  if (value && typeof value === 'object') return Object.values(value).every(finiteEverywhere);
  return true;
}

function admitsNull(type: avro.Type): boolean {
  const schema = type.schema() as unknown;
  return schema === 'null' || (Array.isArray(schema) && schema.includes('null'));
}

function describe(type: avro.Type): string {
  if (type instanceof DecimalType) return type.describe();
  if (type.typeName === 'logical:timestamp-millis') return 'epoch milliseconds (an integer)';
  const schema = type.schema() as unknown;
  if (typeof schema === 'string') return NAMES[schema] ?? schema;
  if (Array.isArray(schema))
    return schema
      .map((branch) => (typeof branch === 'string' ? (NAMES[branch] ?? branch) : (branch as { type: string }).type))
      .join(' or ');
  const object = schema as { type?: string; symbols?: string[] };
  if (object.symbols) return `one of ${object.symbols.join(', ')}`;
  return object.type ?? 'a value of the schema';
}

const NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  boolean: 'a boolean',
  int: 'an integer (int)',
  long: 'an integer (long)',
  float: 'a number (float)',
  double: 'a number (double)',
  bytes: 'a string (bytes)',
  null: 'null',
};

function preview(value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  return (text ?? typeof value).slice(0, 60);
}
