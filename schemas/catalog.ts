import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { SchemaRegistryError, SchemaStartupError } from './errors.js';
import { RegistryHttpClient } from './registry-client.js';

/** The folder of the .avsc contracts, one per topic value. */
export const AVRO_DIR = fileURLToPath(new URL('./avro/', import.meta.url));

export interface SubjectSchema {
  /** `<topic>-value` (Confluent's TopicNameStrategy). */
  readonly subject: string;
  readonly topic: string;
  /** Where the schema comes from, for messages: a contract file or a source declaration. */
  readonly file: string;
  readonly schema: unknown;
}

const cache = new Map<string, unknown>();

/** Reads `schemas/avro/<name>.avsc` (parsed JSON), once per process. */
export function loadAvsc(name: string): unknown {
  let schema = cache.get(name);
  if (schema === undefined) {
    schema = JSON.parse(readFileSync(`${AVRO_DIR}${name}.avsc`, 'utf8')) as unknown;
    cache.set(name, schema);
  }
  return schema;
}

/**
 * The subjects of the platform's own topics, whatever the topology: monitoring and registries.
 * Sources, views and models add theirs (`sourceSubjects`, `viewSubjects`, `predictionSubjects`).
 */
export function platformSubjects(prefix: string): SubjectSchema[] {
  // dlq is absent on purpose: dead letters carry the original bytes untouched, with the facts in
  // headers (see dlq.avsc for the row the sink derives from them).
  const files = [
    'monitoring.quality',
    'monitoring.drift',
    'monitoring.performance',
    'monitoring.alerts',
    'monitoring.actions',
    'monitoring.lag',
    'monitoring.shadow',
    'registry.features',
    'registry.models',
    'registry.experiments',
    'registry.deployments',
    'registry.readiness',
  ];
  return files.map((file) => ({
    subject: `${prefix}${file}-value`,
    topic: `${prefix}${file}`,
    file: `schemas/avro/${file}.avsc`,
    schema: loadAvsc(file),
  }));
}

/** The subjects of one source: its raw schema (declared) and its events schema (derived). */
export function sourceSubjects(prefix: string, source: string, rawSchema: unknown, eventsSchema: unknown): SubjectSchema[] {
  return [
    { subject: `${prefix}raw.${source}-value`, topic: `${prefix}raw.${source}`, file: `the schema of source ${source}`, schema: rawSchema },
    {
      subject: `${prefix}events.${source}-value`,
      topic: `${prefix}events.${source}`,
      file: `the events schema derived for source ${source}`,
      schema: eventsSchema,
    },
  ];
}

/** The subjects of feature views' topics: every features.<view> carries a FeatureVector. */
export function viewSubjects(prefix: string, views: readonly string[]): SubjectSchema[] {
  return views.map((view) => ({
    subject: `${prefix}features.${view}-value`,
    topic: `${prefix}features.${view}`,
    file: 'schemas/avro/features.avsc',
    schema: loadAvsc('features'),
  }));
}

/**
 * The subjects of models' prediction topics: every predictions.<model> carries a Prediction, and
 * so does predictions.<model>.shadow (a shadow version's scores, which decide nothing).
 */
export function predictionSubjects(prefix: string, models: readonly string[]): SubjectSchema[] {
  return models.flatMap((model) =>
    [`predictions.${model}`, `predictions.${model}.shadow`].map((topic) => ({
      subject: `${prefix}${topic}-value`,
      topic: `${prefix}${topic}`,
      file: 'schemas/avro/predictions.avsc',
      schema: loadAvsc('predictions'),
    })),
  );
}

/** Schema ids by subject. */
export type SchemaIds = ReadonlyMap<string, number>;

/**
 * Registers the project's schemas. An incompatible change fails before anything is written, with
 * a message naming the subject, the registered version it breaks, the field and the rule, and the
 * commands that resolve it.
 */
export async function registerSchemas(
  registryUrl: string,
  subjects: readonly SubjectSchema[],
  logger: Logger,
): Promise<Map<string, number>> {
  const client = new RegistryHttpClient(registryUrl);
  const ids = new Map<string, number>();
  for (const { subject, file, schema } of subjects) {
    try {
      const { compatible, messages } = await client.testCompatibility(subject, schema);
      if (!compatible) {
        const versions = await conflictingVersions(client, subject, messages);
        throw new SchemaStartupError(incompatibilityMessage(registryUrl, file, subject, versions, messages), {
          context: { subject, versions },
        });
      }
      ids.set(subject, await client.register(subject, schema));
    } catch (error) {
      if (error instanceof SchemaStartupError) throw error;
      const detail = error instanceof SchemaRegistryError ? error.message : String(error);
      throw new SchemaStartupError(`registering ${file} as ${subject} at ${registryUrl} failed: ${detail}`, { cause: error });
    }
  }
  logger.info({ subjects: ids.size }, 'project schemas registered');
  return ids;
}

/**
 * The registered versions a candidate conflicts with: those the registry's messages name
 * ("... data of version 3 ..."), else the latest.
 */
async function conflictingVersions(client: RegistryHttpClient, subject: string, messages: readonly string[]): Promise<number[]> {
  const named = [...new Set(messages.flatMap((message) => [...message.matchAll(/\bversion (\d+)\b/g)].map((match) => Number(match[1]))))];
  if (named.length > 0) return named.sort((left, right) => left - right);
  try {
    const latest = await client.call<{ version: number }>('GET', `/subjects/${encodeURIComponent(subject)}/versions/latest`);
    return [latest.version];
  } catch {
    return [];
  }
}

/** What `sluice up` says when a registered schema blocks the topology's: what, where, and how out. */
export function incompatibilityMessage(
  registryUrl: string,
  file: string,
  subject: string,
  versions: readonly number[],
  messages: readonly string[],
): string {
  const which = versions.length === 0 ? 'one of its registered versions' : `${subject} version ${versions.join(', ')}`;
  const rules = messages.join('; ') || 'the registry gave no details';
  const path = `${registryUrl}/subjects/${encodeURIComponent(subject)}`;
  const version = versions.at(-1) ?? 'latest';
  return (
    `${file} is incompatible with subject ${subject}: ${rules}. The conflicting registration: ${which}. ` +
    `To resolve it, either evolve the schema compatibly (a new field needs a default), or remove the conflicting version: ` +
    `with the stack stopped, run \`sluice run registry\` (the registry alone, on this data directory), then ` +
    `\`curl -X DELETE '${path}/versions/${version}?force=true'\` and \`curl -X DELETE '${path}/versions/${version}?permanent=true&force=true'\` ` +
    `(add -H "Authorization: Bearer $SLUICE_REGISTRY_AUTH_TOKEN" when the registry requires a token), and start again. ` +
    `Or relax the rule for this subject: \`curl -X PUT -H 'Content-Type: application/json' --data '{"compatibility":"NONE"}' '${registryUrl}/config/${encodeURIComponent(subject)}'\``
  );
}
