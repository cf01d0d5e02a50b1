import { checkCompatibility, isCompatibilityLevel, type CompatibilityLevel } from '../compatibility.js';
import { IncompatibleSchemaError, SchemaRegistryError } from '../errors.js';
import { parseSchemaText } from '../model.js';
import type { SubjectUsage } from './in-use.js';
import { topicOfSubject } from './in-use.js';
import { configKey, encodeRecord, schemaKey, type RegistryKey, type SchemaValue } from './records.js';
import type { RegistryState, VersionEntry } from './state.js';

/** Appends one record to the registry's log and resolves once the state has applied it. */
export type AppendRecord = (key: RegistryKey, value: Buffer | null) => Promise<void>;

export interface SchemaRequest {
  readonly schema?: unknown;
  readonly schemaType?: unknown;
  readonly references?: unknown;
}

export interface SubjectVersion {
  readonly subject: string;
  readonly id: number;
  readonly version: number;
  readonly schema: string;
}

const MAX_VERSION = 2 ** 31 - 1;
const CANONICAL_CACHE_SIZE = 1024;

/**
 * The Confluent Schema Registry API as operations: validation and compatibility here, state in
 * RegistryState, durability through `append`. Writes are serialized (one at a time), so ids and
 * versions are assigned without races: concurrent registrations of one schema yield one id.
 */
export class SchemaRegistryService {
  private writes: Promise<unknown> = Promise.resolve();
  /** Schema text as sent → canonical text; clients send the same few texts over and over. */
  private readonly canonicalCache = new Map<string, string>();

  constructor(
    private readonly state: RegistryState,
    private readonly append: AppendRecord,
    /** Who uses a subject now; deletes of a subject in use need `force`. None: nothing is protected. */
    private readonly inUse?: SubjectUsage,
  ) {}

  // ---- schemas -----------------------------------------------------------------------------

  schemaById(id: string): { schema: string } {
    return { schema: this.storedSchema(id).text };
  }

  subjectVersionsOfId(id: string, includeDeleted: boolean): { subject: string; version: number }[] {
    const schema = this.storedSchema(id);
    return this.state.usesOf(schema.id, includeDeleted);
  }

  // ---- subjects ----------------------------------------------------------------------------

  subjects(includeDeleted: boolean, prefix = ''): string[] {
    return this.state.subjectNames(includeDeleted).filter((subject) => subject.startsWith(prefix));
  }

  versions(subject: string, includeDeleted: boolean): number[] {
    return this.requireVersions(subject, includeDeleted).map((entry) => entry.version);
  }

  version(subject: string, versionText: string, includeDeleted: boolean): SubjectVersion {
    const entry = this.findVersion(subject, versionText, includeDeleted);
    return this.describe(subject, entry);
  }

  /** POST /subjects/{subject}: is this schema registered under the subject? */
  lookup(subject: string, request: SchemaRequest, includeDeleted: boolean): SubjectVersion {
    const text = this.canonicalText(request);
    const versions = this.requireVersions(subject, includeDeleted);
    const id = this.state.idOfText(text);
    const entry = versions.find((candidate) => candidate.id === id);
    if (!entry) throw new SchemaRegistryError(40403, 'Schema not found');
    return this.describe(subject, entry);
  }

  /** POST /subjects/{subject}/versions: registers (or finds) the schema, returns its global id. */
  register(subject: string, request: SchemaRequest): Promise<{ id: number }> {
    const text = this.canonicalText(request);
    return this.serialized(async () => {
      const active = this.state.versions(subject, false);
      const knownId = this.state.idOfText(text);
      const existing = active.find((entry) => entry.id === knownId);
      if (existing) return { id: existing.id };
      const node = knownId === undefined ? parseSchemaText(text).node : this.schemaOf({ version: 0, id: knownId, deleted: false }).node;

      const level = this.state.effectiveCompatibility(subject);
      const history = active.map((entry) => ({ version: entry.version, node: this.schemaOf(entry).node }));
      const messages = checkCompatibility(level, node, history);
      if (messages.length > 0) throw new IncompatibleSchemaError(subject, messages);

      const id = knownId ?? this.state.nextId();
      const version = this.state.highestVersion(subject) + 1;
      const value: SchemaValue = { subject, version, id, schema: text, deleted: false };
      await this.append(schemaKey(subject, version), encodeRecord(value));
      return { id };
    });
  }

  /**
   * DELETE /subjects/{subject}: soft by default; permanent only after a soft delete. A subject a
   * running consumer uses is refused (409) unless `force`.
   */
  deleteSubject(subject: string, permanent: boolean, force = false): Promise<number[]> {
    return this.serialized(async () => {
      const all = this.state.versions(subject, true);
      if (all.length === 0) throw subjectNotFound(subject);
      if (!force) await this.refuseInUse(subject);
      if (permanent) {
        if (all.some((entry) => !entry.deleted)) {
          throw new SchemaRegistryError(40405, `Subject '${subject}' was not deleted first before being permanently deleted`);
        }
        for (const entry of all) await this.append(schemaKey(subject, entry.version), null);
        return all.map((entry) => entry.version);
      }
      const active = all.filter((entry) => !entry.deleted);
      if (active.length === 0) {
        throw new SchemaRegistryError(40404, `Subject '${subject}' was soft deleted.Set permanent=true to delete permanently`);
      }
      for (const entry of active) await this.append(schemaKey(subject, entry.version), encodeRecord(this.valueOf(subject, entry, true)));
      return active.map((entry) => entry.version);
    });
  }

  /** DELETE /subjects/{subject}/versions/{version}; a subject in use needs `force`, as for the whole subject. */
  deleteVersion(subject: string, versionText: string, permanent: boolean, force = false): Promise<number> {
    return this.serialized(async () => {
      const entry = this.findVersion(subject, versionText, permanent);
      if (!force) await this.refuseInUse(subject);
      if (permanent) {
        if (!entry.deleted) {
          throw new SchemaRegistryError(
            40407,
            `Subject '${subject}' Version ${entry.version} was not deleted first before being permanently deleted`,
          );
        }
        await this.append(schemaKey(subject, entry.version), null);
        return entry.version;
      }
      await this.append(schemaKey(subject, entry.version), encodeRecord(this.valueOf(subject, entry, true)));
      return entry.version;
    });
  }

  // ---- compatibility -------------------------------------------------------------------------

  /**
   * POST /compatibility/subjects/{subject}/versions[/{version}]: with a version, against that
   * version only; without, against the versions the subject's level requires.
   */
  testCompatibility(
    subject: string,
    versionText: string | undefined,
    request: SchemaRequest,
  ): { is_compatible: boolean; messages: string[] } {
    const { node } = parseSchemaText(this.canonicalText(request));
    const level = this.state.effectiveCompatibility(subject);
    let history: { version: number; node: ReturnType<typeof parseSchemaText>['node'] }[];
    if (versionText === undefined) {
      history = this.state.versions(subject, false).map((entry) => ({ version: entry.version, node: this.schemaOf(entry).node }));
    } else {
      const entry = this.findVersion(subject, versionText, false);
      history = [{ version: entry.version, node: this.schemaOf(entry).node }];
    }
    const messages = checkCompatibility(level, node, history);
    return { is_compatible: messages.length === 0, messages };
  }

  // ---- config --------------------------------------------------------------------------------

  globalConfig(): { compatibilityLevel: CompatibilityLevel } {
    return { compatibilityLevel: this.state.globalCompatibility() };
  }

  subjectConfig(subject: string, defaultToGlobal: boolean): { compatibilityLevel: CompatibilityLevel } {
    const level = this.state.subjectCompatibility(subject);
    if (level) return { compatibilityLevel: level };
    if (defaultToGlobal) return this.globalConfig();
    throw new SchemaRegistryError(40408, `Subject '${subject}' does not have subject-level compatibility configured`);
  }

  setConfig(subject: string | null, body: unknown): Promise<{ compatibility: CompatibilityLevel }> {
    const requested = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).compatibility : undefined;
    const level = typeof requested === 'string' ? requested.toUpperCase() : requested;
    if (!isCompatibilityLevel(level)) {
      throw new SchemaRegistryError(
        42203,
        'Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive',
      );
    }
    return this.serialized(async () => {
      await this.append(configKey(subject), encodeRecord({ compatibilityLevel: level }));
      return { compatibility: level };
    });
  }

  deleteConfig(subject: string | null): Promise<{ compatibilityLevel: CompatibilityLevel }> {
    return this.serialized(async () => {
      let previous: CompatibilityLevel;
      if (subject === null) {
        previous = this.state.globalCompatibility();
      } else {
        const level = this.state.subjectCompatibility(subject);
        if (!level) throw subjectNotFound(subject);
        previous = level;
      }
      await this.append(configKey(subject), null);
      return { compatibilityLevel: previous };
    });
  }

  // ---- helpers -------------------------------------------------------------------------------

  private async refuseInUse(subject: string): Promise<void> {
    if (!this.inUse) return;
    let users: readonly string[];
    try {
      users = await this.inUse(subject);
    } catch (cause) {
      throw new SchemaRegistryError(
        50003,
        `Cannot tell whether subject '${subject}' is in use (asking Kafka for its consumer groups failed); add ?force=true to delete it anyway`,
        { cause, retriable: true },
      );
    }
    if (users.length === 0) return;
    throw new SchemaRegistryError(
      40901,
      `Subject '${subject}' is in use: topic ${topicOfSubject(subject) ?? subject} is read by the consumer group(s) ${users.join(', ')}. ` +
        'Deleting it breaks them (the next start of their topology registers against what remains). Stop them first, or add ?force=true',
      { context: { subject, users } },
    );
  }

  private serialized<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.writes.then(operation, operation);
    this.writes = result.catch(() => undefined);
    return result;
  }

  /** Validates a request body and returns the schema's canonical text (JSON without whitespace). */
  private canonicalText(request: SchemaRequest): string {
    const type = request.schemaType ?? 'AVRO';
    if (type !== 'AVRO')
      throw new SchemaRegistryError(
        42201,
        `Invalid schema: unsupported schema type ${JSON.stringify(type)}; this registry stores AVRO only`,
      );
    if (Array.isArray(request.references) && request.references.length > 0) {
      throw new SchemaRegistryError(42201, 'Invalid schema: schema references are not supported; inline the referenced types');
    }
    if (typeof request.schema !== 'string' || request.schema.trim() === '') {
      throw new SchemaRegistryError(42201, 'Invalid schema: the request has no "schema" string');
    }
    const cached = this.canonicalCache.get(request.schema);
    if (cached !== undefined) return cached;
    const canonical = JSON.stringify(parseSchemaText(request.schema).json);
    if (this.canonicalCache.size >= CANONICAL_CACHE_SIZE) this.canonicalCache.clear();
    this.canonicalCache.set(request.schema, canonical);
    return canonical;
  }

  private storedSchema(idText: string) {
    const id = Number(idText);
    const schema = Number.isInteger(id) ? this.state.schemaById(id) : undefined;
    if (!schema) throw new SchemaRegistryError(40403, `Schema ${idText} not found`);
    return schema;
  }

  private schemaOf(entry: VersionEntry) {
    const schema = this.state.schemaById(entry.id);
    if (!schema) throw new SchemaRegistryError(50001, `schema ${entry.id} is missing from the store`);
    return schema;
  }

  private requireVersions(subject: string, includeDeleted: boolean): VersionEntry[] {
    const versions = this.state.versions(subject, includeDeleted);
    if (versions.length === 0) throw subjectNotFound(subject);
    return versions;
  }

  private findVersion(subject: string, versionText: string, includeDeleted: boolean): VersionEntry {
    const wanted = parseVersion(versionText);
    const versions = this.requireVersions(subject, includeDeleted);
    const entry = wanted === 'latest' ? versions.at(-1) : versions.find((candidate) => candidate.version === wanted);
    if (!entry) throw new SchemaRegistryError(40402, `Version ${versionText} not found.`);
    return entry;
  }

  private describe(subject: string, entry: VersionEntry): SubjectVersion {
    return { subject, id: entry.id, version: entry.version, schema: this.schemaOf(entry).text };
  }

  private valueOf(subject: string, entry: VersionEntry, deleted: boolean): SchemaValue {
    return { subject, version: entry.version, id: entry.id, schema: this.schemaOf(entry).text, deleted };
  }
}

/** `latest`, `-1` or 1..2^31-1; anything else is Confluent's 42202. */
export function parseVersion(text: string): number | 'latest' {
  if (text === 'latest' || text === '-1') return 'latest';
  const version = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
    throw new SchemaRegistryError(
      42202,
      `The specified version '${text}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`,
    );
  }
  return version;
}

function subjectNotFound(subject: string): SchemaRegistryError {
  return new SchemaRegistryError(40401, `Subject '${subject}' not found.`);
}
