import { shortName, type SchemaNode } from './model.js';

/**
 * Avro schema resolution (the specification's "Schema Resolution" section): can data written
 * with `writer` be read with `reader`? And the registry's compatibility levels built on it.
 */
export type IncompatibilityType =
  | 'TYPE_MISMATCH'
  | 'NAME_MISMATCH'
  | 'FIXED_SIZE_MISMATCH'
  | 'MISSING_ENUM_SYMBOLS'
  | 'READER_FIELD_MISSING_DEFAULT_VALUE'
  | 'MISSING_UNION_BRANCH';

export interface Incompatibility {
  readonly type: IncompatibilityType;
  /** JSON-pointer-like location in the reader schema, with field names: `/fields/amount/type`. */
  readonly location: string;
  readonly message: string;
}

const PROMOTIONS: Readonly<Record<string, readonly string[]>> = {
  int: ['long', 'float', 'double'],
  long: ['float', 'double'],
  float: ['double'],
  string: ['bytes'],
  bytes: ['string'],
};

function describe(node: SchemaNode): string {
  switch (node.kind) {
    case 'primitive':
      return node.type;
    case 'record':
    case 'enum':
    case 'fixed':
      return `${node.kind} ${node.name}`;
    case 'array':
      return `array<${describe(node.items)}>`;
    case 'map':
      return `map<${describe(node.values)}>`;
    case 'union':
      return `union[${node.branches.map(describe).join(', ')}]`;
  }
}

/** Named types match by unqualified name, or when the reader lists the writer's name as an alias. */
function namesMatch(reader: { name: string; aliases: readonly string[] }, writer: { name: string }): boolean {
  if (shortName(reader.name) === shortName(writer.name)) return true;
  return reader.aliases.some((alias) => alias === writer.name || shortName(alias) === shortName(writer.name));
}

/** Every reason `reader` cannot read what `writer` wrote; empty when it can. */
export function checkCanRead(reader: SchemaNode, writer: SchemaNode): Incompatibility[] {
  const inProgress = new Set<string>();
  const ids = new WeakMap<SchemaNode, number>();
  let nextId = 0;
  const id = (node: SchemaNode): number => {
    let value = ids.get(node);
    if (value === undefined) {
      value = nextId++;
      ids.set(node, value);
    }
    return value;
  };

  const check = (r: SchemaNode, w: SchemaNode, location: string): Incompatibility[] => {
    // Recursive types: a pair already being compared is assumed compatible (co-inductively).
    const pair = `${id(r)}:${id(w)}`;
    if (inProgress.has(pair)) return [];
    inProgress.add(pair);
    try {
      return compare(r, w, location);
    } finally {
      inProgress.delete(pair);
    }
  };

  const compare = (r: SchemaNode, w: SchemaNode, location: string): Incompatibility[] => {
    if (w.kind === 'union') {
      // Every branch the writer may have used must be readable.
      return w.branches.flatMap((branch) => check(r, branch, location));
    }
    if (r.kind === 'union') {
      if (r.branches.some((branch) => check(branch, w, location).length === 0)) return [];
      return [
        {
          type: 'MISSING_UNION_BRANCH',
          location,
          message: `the reader's ${describe(r)} has no branch that can read the writer's ${describe(w)}`,
        },
      ];
    }
    if (r.kind === 'primitive' && w.kind === 'primitive') {
      if (r.type === w.type || PROMOTIONS[w.type]?.includes(r.type)) return [];
      return [mismatch(r, w, location)];
    }
    if (r.kind !== w.kind) return [mismatch(r, w, location)];

    switch (r.kind) {
      case 'array':
        return check(r.items, (w as typeof r).items, `${location}/items`);
      case 'map':
        return check(r.values, (w as typeof r).values, `${location}/values`);
      case 'fixed': {
        const writer = w as typeof r;
        if (!namesMatch(r, writer)) return [nameMismatch(r.name, writer.name, location)];
        if (r.size !== writer.size) {
          return [
            {
              type: 'FIXED_SIZE_MISMATCH',
              location: `${location}/size`,
              message: `fixed ${r.name} is ${r.size} bytes in the reader but ${writer.size} in the writer`,
            },
          ];
        }
        return [];
      }
      case 'enum': {
        const writer = w as typeof r;
        if (!namesMatch(r, writer)) return [nameMismatch(r.name, writer.name, location)];
        const missing = writer.symbols.filter((symbol) => !r.symbols.includes(symbol));
        if (missing.length === 0 || (r.defaultSymbol !== undefined && r.symbols.includes(r.defaultSymbol))) return [];
        return [
          {
            type: 'MISSING_ENUM_SYMBOLS',
            location: `${location}/symbols`,
            message: `the reader's enum ${r.name} lacks the writer's symbols [${missing.join(', ')}] and has no default symbol`,
          },
        ];
      }
      case 'record': {
        const writer = w as typeof r;
        if (!namesMatch(r, writer)) return [nameMismatch(r.name, writer.name, location)];
        const writerFields = new Map(writer.fields.map((field) => [field.name, field]));
        return r.fields.flatMap((field) => {
          const fieldLocation = `${location}/fields/${field.name}`;
          const match =
            writerFields.get(field.name) ?? field.aliases.map((alias) => writerFields.get(alias)).find((found) => found !== undefined);
          if (match) return check(field.type, match.type, `${fieldLocation}/type`);
          if (field.hasDefault) return [];
          return [
            {
              type: 'READER_FIELD_MISSING_DEFAULT_VALUE' as const,
              location: fieldLocation,
              message: `the reader's field '${field.name}' of record ${r.name} has no default value and the writer has no such field`,
            },
          ];
        });
      }
      default:
        return [];
    }
  };

  return check(reader, writer, '');
}

function mismatch(r: SchemaNode, w: SchemaNode, location: string): Incompatibility {
  return {
    type: 'TYPE_MISMATCH',
    location: location || '/',
    message: `the reader's type ${describe(r)} cannot read the writer's ${describe(w)}`,
  };
}

function nameMismatch(readerName: string, writerName: string, location: string): Incompatibility {
  return {
    type: 'NAME_MISMATCH',
    location: `${location}/name`,
    message: `the reader's ${readerName} does not match the writer's ${writerName} (by name or alias)`,
  };
}

export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;
export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];

export function isCompatibilityLevel(value: unknown): value is CompatibilityLevel {
  return typeof value === 'string' && (COMPATIBILITY_LEVELS as readonly string[]).includes(value);
}

export interface ExistingVersion {
  readonly version: number;
  readonly node: SchemaNode;
}

/**
 * Checks a candidate against a subject's existing versions (oldest first) under a level:
 * BACKWARD means the new schema reads data written with the old one, FORWARD the other way
 * round, FULL both; non-transitive levels compare with the latest version only.
 * Returns human-readable messages, empty when compatible.
 */
export function checkCompatibility(level: CompatibilityLevel, candidate: SchemaNode, existing: readonly ExistingVersion[]): string[] {
  if (level === 'NONE' || existing.length === 0) return [];
  const transitive = level.endsWith('_TRANSITIVE');
  const against = transitive ? existing : existing.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const messages: string[] = [];
  for (const old of against) {
    if (backward) {
      for (const problem of checkCanRead(candidate, old.node)) {
        messages.push(
          `${problem.type} at ${problem.location || '/'}: ${problem.message} (the new schema reading data of version ${old.version}; compatibility ${level})`,
        );
      }
    }
    if (forward) {
      for (const problem of checkCanRead(old.node, candidate)) {
        messages.push(
          `${problem.type} at ${problem.location || '/'}: ${problem.message} (version ${old.version} reading data of the new schema; compatibility ${level})`,
        );
      }
    }
  }
  return messages;
}
