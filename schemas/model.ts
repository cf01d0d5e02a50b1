import avro from 'avsc';
import { InvalidSchemaError } from './errors.js';

/**
 * Avro schemas as a resolved graph: named references point at the same node (so recursive
 * types form cycles), full names are resolved with namespace inheritance, and every field keeps
 * whether it has a default. This is what the compatibility rules walk.
 */
export type Primitive = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';

export interface FieldNode {
  readonly name: string;
  readonly type: SchemaNode;
  readonly hasDefault: boolean;
  readonly aliases: readonly string[];
}

export type SchemaNode =
  | { readonly kind: 'primitive'; readonly type: Primitive }
  | { readonly kind: 'record'; readonly name: string; readonly aliases: readonly string[]; readonly fields: FieldNode[] }
  | {
      readonly kind: 'enum';
      readonly name: string;
      readonly aliases: readonly string[];
      readonly symbols: readonly string[];
      readonly defaultSymbol: string | undefined;
    }
  | { readonly kind: 'fixed'; readonly name: string; readonly aliases: readonly string[]; readonly size: number }
  | { readonly kind: 'array'; readonly items: SchemaNode }
  | { readonly kind: 'map'; readonly values: SchemaNode }
  | { readonly kind: 'union'; readonly branches: readonly SchemaNode[] };

const PRIMITIVES = new Set<string>(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** Parses schema text: must be JSON and valid Avro (avsc checks names, defaults, unions). */
export function parseSchemaText(text: string): { json: unknown; node: SchemaNode } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new InvalidSchemaError(`not JSON: ${(cause as Error).message}`, { cause });
  }
  try {
    avro.Type.forSchema(json as avro.Schema);
  } catch (cause) {
    throw new InvalidSchemaError((cause as Error).message, { cause });
  }
  return { json, node: buildNode(json) };
}

/** The unqualified part of a full name. */
export function shortName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

function buildNode(json: unknown): SchemaNode {
  const named = new Map<string, SchemaNode>();

  const qualify = (name: string, namespace: string | undefined): string =>
    name.includes('.') || !namespace ? name : `${namespace}.${name}`;

  const visit = (schema: unknown, namespace: string | undefined): SchemaNode => {
    if (typeof schema === 'string') {
      if (PRIMITIVES.has(schema)) return { kind: 'primitive', type: schema as Primitive };
      const found = named.get(qualify(schema, namespace)) ?? named.get(schema);
      if (!found) throw new InvalidSchemaError(`undefined type name: ${schema}`);
      return found;
    }
    if (Array.isArray(schema)) return { kind: 'union', branches: schema.map((branch) => visit(branch, namespace)) };
    if (typeof schema !== 'object' || schema === null) throw new InvalidSchemaError(`unexpected schema: ${JSON.stringify(schema)}`);
    const object = schema as Record<string, unknown>;
    const type = object.type;
    if (typeof type === 'string' && PRIMITIVES.has(type)) return { kind: 'primitive', type: type as Primitive };
    if (type === 'array') return { kind: 'array', items: visit(object.items, namespace) };
    if (type === 'map') return { kind: 'map', values: visit(object.values, namespace) };
    if (type === 'record' || type === 'error' || type === 'enum' || type === 'fixed') {
      const ownNamespace = typeof object.namespace === 'string' ? object.namespace : namespace;
      const fullName = qualify(String(object.name), ownNamespace);
      const innerNamespace = fullName.includes('.') ? fullName.slice(0, fullName.lastIndexOf('.')) : undefined;
      const aliases = Array.isArray(object.aliases) ? object.aliases.map((alias) => qualify(String(alias), innerNamespace)) : [];
      if (type === 'enum') {
        const node: SchemaNode = {
          kind: 'enum',
          name: fullName,
          aliases,
          symbols: (object.symbols as string[] | undefined) ?? [],
          defaultSymbol: typeof object.default === 'string' ? object.default : undefined,
        };
        named.set(fullName, node);
        return node;
      }
      if (type === 'fixed') {
        const node: SchemaNode = { kind: 'fixed', name: fullName, aliases, size: Number(object.size) };
        named.set(fullName, node);
        return node;
      }
      const fields: FieldNode[] = [];
      const node: SchemaNode = { kind: 'record', name: fullName, aliases, fields };
      named.set(fullName, node); // before the fields, so recursive references resolve
      for (const field of (object.fields as Record<string, unknown>[] | undefined) ?? []) {
        fields.push({
          name: String(field.name),
          type: visit(field.type, innerNamespace),
          hasDefault: Object.hasOwn(field, 'default'),
          aliases: Array.isArray(field.aliases) ? field.aliases.map(String) : [],
        });
      }
      return node;
    }
    // A nested type object such as {"type": {"type": "record", ...}} or {"type": "Name"}.
    return visit(type, namespace);
  };

  return visit(json, undefined);
}
