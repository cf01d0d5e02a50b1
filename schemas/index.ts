export { AvroSerde, readSchemaId, avroType } from './serde.js';
export { DecimalType, LOGICAL_TYPES } from './logical-types.js';
export { RegistryHttpClient, useRegistryToken } from './registry-client.js';
export {
  loadAvsc,
  platformSubjects,
  sourceSubjects,
  viewSubjects,
  predictionSubjects,
  registerSchemas,
  incompatibilityMessage,
  AVRO_DIR,
  type SubjectSchema,
  type SchemaIds,
} from './catalog.js';
export {
  deriveEventsSchema,
  readAvroSchema,
  checkRecordSchema,
  ENVELOPE_FIELDS,
  SourceSchemaError,
  type AvroRecordSchema,
  type AvroField,
} from './source-schemas.js';
export {
  checkCanRead,
  checkCompatibility,
  COMPATIBILITY_LEVELS,
  isCompatibilityLevel,
  type CompatibilityLevel,
  type Incompatibility,
} from './compatibility.js';
export { parseSchemaText, type SchemaNode } from './model.js';
export {
  startSchemaRegistry,
  consumerGroupUsage,
  topicOfSubject,
  type RunningSchemaRegistry,
  type SchemaRegistryOptions,
  type SubjectUsage,
} from './registry/index.js';
export * from './errors.js';
export { decodeAvroOrJson, decodeAvroOrJsonNow, parseJsonRecord, SchemaViolationError, type SchemaViolation } from './decode.js';
export { readRegistryTopic, publishToRegistryTopic, type RegistryTopic } from './registry-topic.js';
