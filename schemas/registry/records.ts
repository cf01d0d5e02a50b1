/**
 * The records of the `_schemas` topic, in Confluent Schema Registry's own format, so that a
 * Confluent registry pointed at the same topic reads what we wrote (and the other way round).
 * Keys are JSON; every key's latest value is the state (the topic is compacted), and a null
 * value (tombstone) erases it.
 */
export type RegistryKey =
  | { readonly keytype: 'SCHEMA'; readonly subject: string; readonly version: number; readonly magic: 1 }
  | { readonly keytype: 'CONFIG'; readonly subject: string | null; readonly magic: 0 }
  | { readonly keytype: 'NOOP'; readonly magic: 0 };

export interface SchemaValue {
  readonly subject: string;
  readonly version: number;
  readonly id: number;
  readonly schema: string;
  readonly deleted: boolean;
  /** Omitted for AVRO, as Confluent does. */
  readonly schemaType?: string;
}

export interface ConfigValue {
  readonly compatibilityLevel: string;
}

export function schemaKey(subject: string, version: number): RegistryKey {
  return { keytype: 'SCHEMA', subject, version, magic: 1 };
}

export function configKey(subject: string | null): RegistryKey {
  return { keytype: 'CONFIG', subject, magic: 0 };
}

export function encodeRecord(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Parses a key, or says why it cannot (foreign bytes on the topic are skipped, not fatal). */
export function decodeKey(bytes: Buffer | null): RegistryKey | Error {
  if (!bytes) return new Error('record without a key');
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as Partial<Record<string, unknown>>;
    if (parsed.keytype === 'SCHEMA' && typeof parsed.subject === 'string' && Number.isInteger(parsed.version)) {
      return { keytype: 'SCHEMA', subject: parsed.subject, version: Number(parsed.version), magic: 1 };
    }
    if (parsed.keytype === 'CONFIG' && (typeof parsed.subject === 'string' || parsed.subject === null || parsed.subject === undefined)) {
      return { keytype: 'CONFIG', subject: parsed.subject ?? null, magic: 0 };
    }
    if (typeof parsed.keytype === 'string') return { keytype: 'NOOP', magic: 0 };
    return new Error('key without a keytype');
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

export function decodeSchemaValue(bytes: Buffer): SchemaValue | Error {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as Partial<Record<string, unknown>>;
    if (
      typeof parsed.subject !== 'string' ||
      !Number.isInteger(parsed.version) ||
      !Number.isInteger(parsed.id) ||
      typeof parsed.schema !== 'string'
    ) {
      return new Error('schema record lacks subject, version, id or schema');
    }
    return {
      subject: parsed.subject,
      version: Number(parsed.version),
      id: Number(parsed.id),
      schema: parsed.schema,
      deleted: parsed.deleted === true,
      ...(typeof parsed.schemaType === 'string' ? { schemaType: parsed.schemaType } : {}),
    };
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

export function decodeConfigValue(bytes: Buffer): ConfigValue | Error {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as Partial<Record<string, unknown>>;
    if (typeof parsed.compatibilityLevel !== 'string') return new Error('config record lacks compatibilityLevel');
    return { compatibilityLevel: parsed.compatibilityLevel };
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}
