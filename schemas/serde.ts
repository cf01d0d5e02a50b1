import registryClient from '@kafkajs/confluent-schema-registry';
import type avro from 'avsc';
import { DeserializationError } from './errors.js';
import { LOGICAL_TYPES, avroType } from './logical-types.js';

// The client is CommonJS: its values come through the default export under Node's ESM loader.
const { SchemaRegistry, SchemaType } = registryClient;
type RegistryClient = InstanceType<typeof SchemaRegistry>;

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;
/** Where values are encoded before they are copied out (used synchronously: no await in between). */
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Confluent wire format (magic byte 0, 4-byte big-endian schema id, Avro body) through
 * @kafkajs/confluent-schema-registry, which caches schemas by id. Decoding resolves the writer's
 * schema to the reader's, so records written by old and new producers read as one shape; the
 * resolver of each (writer id, reader) pair is built once.
 */
export class AvroSerde {
  readonly client: RegistryClient;
  /** Per writer schema id: the resolver into the reader, or null when the two are equal. */
  private readonly resolvers = new Map<number, avro.Resolver | null>();
  /** Writer types by schema id, once fetched and parsed. */
  private readonly writers = new Map<number, avro.Type>();
  /**
   * Fetches in flight by schema id: the client caches a schema only once its first fetch returns,
   * so a chunk of records decoded at once would otherwise fetch and parse it once per record.
   */
  private readonly fetching = new Map<number, Promise<avro.Type>>();

  constructor(
    registryUrl: string,
    readonly reader?: avro.Type,
  ) {
    this.client = new SchemaRegistry(
      { host: registryUrl, clientId: 'sluice', retry: { retries: 2 } },
      { [SchemaType.AVRO]: { logicalTypes: LOGICAL_TYPES } },
    );
  }

  async encode(schemaId: number, value: unknown): Promise<Buffer> {
    return this.encodeNow(schemaId, value);
  }

  /**
   * `encode` without a promise once the writer schema is loaded (`prepare`): the bytes at once,
   * or a promise while the schema is fetched (or the client builds the error of an invalid value).
   */
  encodeNow(schemaId: number, value: unknown): Buffer | Promise<Buffer> {
    const type = this.writers.get(schemaId);
    if (type === undefined) return this.writerType(schemaId).then((fetched) => this.encodeWith(fetched, schemaId, value));
    return this.encodeWith(type, schemaId, value);
  }

  private encodeWith(type: avro.Type, schemaId: number, value: unknown): Buffer | Promise<Buffer> {
    let end: number;
    try {
      // Into the shared scratch buffer after the header, then one copy of the exact size (avsc's
      // toBuffer allocates a zeroed buffer per value, which was then copied behind the header).
      end = type.encode(value, scratch, HEADER_BYTES);
      if (end < 0) {
        // Too small: encode returned the bytes missing.
        scratch = Buffer.allocUnsafe(Math.max(2 * scratch.length, scratch.length - end));
        end = type.encode(value, scratch, HEADER_BYTES);
      }
    } catch {
      // The client's own encode names the invalid paths in its error (schema now cached: no fetch).
      return this.client.encode(schemaId, value);
    }
    scratch[0] = MAGIC_BYTE;
    scratch.writeInt32BE(schemaId, 1);
    const message = Buffer.allocUnsafe(end);
    scratch.copy(message, 0, 0, end);
    return message;
  }

  /**
   * Loads the writer schemas of these ids (from the registry, once): afterwards `encode` of them
   * needs no registry. A stage calls it before it changes state, so that a registry outage fails
   * the record before its state write, not between the write and the output.
   */
  async prepare(schemaIds: Iterable<number>): Promise<void> {
    for (const schemaId of schemaIds) if (!this.writers.has(schemaId)) await this.writerType(schemaId);
  }

  /** Whether the writer schemas of these ids are loaded (`prepare` would not wait). */
  isPrepared(schemaIds: Iterable<number>): boolean {
    for (const schemaId of schemaIds) if (!this.writers.has(schemaId)) return false;
    return true;
  }

  /** Decodes a Confluent-framed message into the reader's shape (or the writer's, without a reader). */
  async decode(message: Buffer): Promise<unknown> {
    return await this.decodeNow(message);
  }

  /** `decode` without a promise once the writer schema is loaded; a promise while it is fetched. */
  decodeNow(message: Buffer): unknown {
    const schemaId = readSchemaId(message);
    const writer = this.writers.get(schemaId);
    if (writer === undefined) return this.writerType(schemaId).then((fetched) => this.decodeWith(fetched, schemaId, message));
    return this.decodeWith(writer, schemaId, message);
  }

  private decodeWith(writer: avro.Type, schemaId: number, message: Buffer): unknown {
    const body = message.subarray(HEADER_BYTES);
    try {
      if (!this.reader) return writer.fromBuffer(body);
      const resolver = this.resolverFor(schemaId, writer, this.reader);
      return resolver ? this.reader.fromBuffer(body, resolver) : this.reader.fromBuffer(body);
    } catch (cause) {
      throw new DeserializationError('SLUICE_AVRO_BODY', `Avro body of schema ${schemaId} does not decode: ${(cause as Error).message}`, {
        cause,
        context: { schemaId },
      });
    }
  }

  private writerType(schemaId: number): Promise<avro.Type> {
    let pending = this.fetching.get(schemaId);
    if (!pending) {
      pending = this.fetchWriterType(schemaId);
      this.fetching.set(schemaId, pending);
      pending.then(
        (type) => this.writers.set(schemaId, type),
        () => this.fetching.delete(schemaId), // the next record asks again
      );
    }
    return pending;
  }

  private async fetchWriterType(schemaId: number): Promise<avro.Type> {
    try {
      return (await this.client.getSchema(schemaId)) as unknown as avro.Type;
    } catch (cause) {
      const status = (cause as { status?: number }).status;
      if (status === 404) {
        throw new DeserializationError('SLUICE_UNKNOWN_SCHEMA_ID', `schema id ${schemaId} is not in the registry`, {
          cause,
          context: { schemaId },
        });
      }
      throw new DeserializationError(
        'SLUICE_REGISTRY_UNAVAILABLE',
        `schema registry lookup of id ${schemaId} failed: ${(cause as Error).message}`,
        {
          cause,
          retriable: true,
          context: { schemaId },
        },
      );
    }
  }

  private resolverFor(schemaId: number, writer: avro.Type, reader: avro.Type): avro.Resolver | null {
    let resolver = this.resolvers.get(schemaId);
    if (resolver === undefined) {
      try {
        resolver = reader.equals(writer) ? null : reader.createResolver(writer);
      } catch (cause) {
        throw new DeserializationError(
          'SLUICE_SCHEMA_UNRESOLVABLE',
          `writer schema ${schemaId} cannot be read as ${reader.name ?? 'the reader schema'}: ${(cause as Error).message}`,
          { cause },
        );
      }
      this.resolvers.set(schemaId, resolver);
    }
    return resolver;
  }
}

/** Reads the schema id of a Confluent-framed message, rejecting anything else. */
export function readSchemaId(message: Buffer): number {
  if (message.length < HEADER_BYTES) {
    throw new DeserializationError(
      'SLUICE_WIRE_TOO_SHORT',
      `message of ${message.length} bytes is too short for the Confluent wire format`,
    );
  }
  if (message[0] !== MAGIC_BYTE) {
    throw new DeserializationError('SLUICE_WIRE_MAGIC_BYTE', `unknown magic byte ${message[0]} (expected 0: Confluent wire format)`);
  }
  return message.readInt32BE(1);
}

export { avroType };
