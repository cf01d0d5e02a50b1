import { SluiceError, type SluiceErrorOptions } from '../common/errors.js';

/**
 * A schema registry failure with Confluent's error code (40401 subject not found, 42201 invalid
 * schema, ...). The HTTP status is the code's first three digits.
 */
export class SchemaRegistryError extends SluiceError {
  readonly errorCode: number;

  constructor(errorCode: number, message: string, options: SluiceErrorOptions = {}) {
    super(`SLUICE_SCHEMA_REGISTRY_${errorCode}`, message, options);
    this.errorCode = errorCode;
  }

  get httpStatus(): number {
    return this.errorCode >= 1000 ? Math.floor(this.errorCode / 100) : this.errorCode;
  }
}

/** A schema that is not valid Avro (or not JSON). */
export class InvalidSchemaError extends SchemaRegistryError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super(42201, `Invalid schema: ${message}`, options);
  }
}

/** A schema that breaks the compatibility rule of its subject. */
export class IncompatibleSchemaError extends SchemaRegistryError {
  readonly messages: readonly string[];

  constructor(subject: string, messages: readonly string[]) {
    super(409, `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: ${messages.join('; ')}`, {
      context: { subject },
    });
    this.messages = messages;
  }
}

/** Bytes that cannot be decoded: bad magic byte, unknown schema id, truncated body. */
export class DeserializationError extends SluiceError {
  constructor(code: string, message: string, options: SluiceErrorOptions = {}) {
    super(code, message, options);
  }
}

/** The project's own schemas cannot be registered (start-up fails with this). */
export class SchemaStartupError extends SluiceError {
  constructor(message: string, options: SluiceErrorOptions = {}) {
    super('SLUICE_SCHEMA_STARTUP', message, options);
  }
}
