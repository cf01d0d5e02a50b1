import { isCompatibilityLevel, type CompatibilityLevel } from '../compatibility.js';
import { parseSchemaText, type SchemaNode } from '../model.js';
import { decodeConfigValue, decodeKey, decodeSchemaValue } from './records.js';

export interface VersionEntry {
  readonly version: number;
  readonly id: number;
  readonly deleted: boolean;
}

export interface StoredSchema {
  readonly id: number;
  readonly text: string;
  readonly node: SchemaNode;
}

export interface SkippedRecord {
  readonly offset: string;
  readonly reason: string;
}

/**
 * The registry's state, derived only from `_schemas` records in log order (the log is the
 * truth: a restarted registry replays the topic into a fresh RegistryState). Pure; no I/O.
 */
export class RegistryState {
  private readonly schemasById = new Map<number, StoredSchema>();
  private readonly idsByText = new Map<string, number>();
  private readonly subjects = new Map<string, Map<number, VersionEntry>>();
  private readonly subjectLevels = new Map<string, CompatibilityLevel>();
  private globalLevel: CompatibilityLevel | undefined;
  private highestId = 0;

  constructor(readonly defaultLevel: CompatibilityLevel = 'BACKWARD') {}

  /** Applies one record; a record it cannot understand is reported back and changes nothing. */
  apply(key: Buffer | null, value: Buffer | null, offset: string): SkippedRecord | undefined {
    const parsedKey = decodeKey(key);
    if (parsedKey instanceof Error) return { offset, reason: `undecodable key: ${parsedKey.message}` };
    if (parsedKey.keytype === 'NOOP') return undefined;
    if (parsedKey.keytype === 'CONFIG') {
      if (value === null) {
        if (parsedKey.subject === null) this.globalLevel = undefined;
        else this.subjectLevels.delete(parsedKey.subject);
        return undefined;
      }
      const config = decodeConfigValue(value);
      if (config instanceof Error) return { offset, reason: config.message };
      const level = config.compatibilityLevel.toUpperCase();
      if (!isCompatibilityLevel(level)) return { offset, reason: `unknown compatibility level ${config.compatibilityLevel}` };
      if (parsedKey.subject === null) this.globalLevel = level;
      else this.subjectLevels.set(parsedKey.subject, level);
      return undefined;
    }
    const versions = this.subjects.get(parsedKey.subject) ?? new Map<number, VersionEntry>();
    if (value === null) {
      versions.delete(parsedKey.version);
      if (versions.size === 0) this.subjects.delete(parsedKey.subject);
      return undefined;
    }
    const record = decodeSchemaValue(value);
    if (record instanceof Error) return { offset, reason: record.message };
    if ((record.schemaType ?? 'AVRO') !== 'AVRO') return { offset, reason: `unsupported schema type ${record.schemaType}` };
    if (!this.schemasById.has(record.id)) {
      let node: SchemaNode;
      try {
        node = parseSchemaText(record.schema).node;
      } catch (error) {
        return { offset, reason: `invalid schema text: ${(error as Error).message}` };
      }
      this.schemasById.set(record.id, { id: record.id, text: record.schema, node });
      this.idsByText.set(record.schema, record.id);
    }
    this.highestId = Math.max(this.highestId, record.id);
    versions.set(record.version, { version: record.version, id: record.id, deleted: record.deleted });
    this.subjects.set(parsedKey.subject, versions);
    return undefined;
  }

  schemaById(id: number): StoredSchema | undefined {
    return this.schemasById.get(id);
  }

  idOfText(text: string): number | undefined {
    return this.idsByText.get(text);
  }

  /** The id a new schema text gets: never one used before. */
  nextId(): number {
    return this.highestId + 1;
  }

  subjectNames(includeDeleted: boolean): string[] {
    return [...this.subjects.entries()]
      .filter(([, versions]) => includeDeleted || [...versions.values()].some((entry) => !entry.deleted))
      .map(([subject]) => subject)
      .sort();
  }

  /** A subject's versions in ascending order. */
  versions(subject: string, includeDeleted: boolean): VersionEntry[] {
    const versions = this.subjects.get(subject);
    if (!versions) return [];
    return [...versions.values()].filter((entry) => includeDeleted || !entry.deleted).sort((a, b) => a.version - b.version);
  }

  /** Versions ever written to the subject and not permanently deleted, soft-deleted ones included. */
  highestVersion(subject: string): number {
    return Math.max(0, ...this.versions(subject, true).map((entry) => entry.version));
  }

  /** Subject/version pairs that use a schema id. */
  usesOf(id: number, includeDeleted: boolean): { subject: string; version: number }[] {
    const uses: { subject: string; version: number }[] = [];
    for (const subject of [...this.subjects.keys()].sort()) {
      for (const entry of this.versions(subject, includeDeleted)) if (entry.id === id) uses.push({ subject, version: entry.version });
    }
    return uses;
  }

  globalCompatibility(): CompatibilityLevel {
    return this.globalLevel ?? this.defaultLevel;
  }

  subjectCompatibility(subject: string): CompatibilityLevel | undefined {
    return this.subjectLevels.get(subject);
  }

  effectiveCompatibility(subject: string): CompatibilityLevel {
    return this.subjectLevels.get(subject) ?? this.globalCompatibility();
  }
}
