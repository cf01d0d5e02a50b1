import type { Logger } from 'pino';
import type { MetricsRegistry } from '../common/metrics.js';
import { loadAvsc } from '../schemas/index.js';
import { featureNames, type FeatureView } from '../topology/features.js';
import type { SourceDefinition } from '../topology/sources.js';
import { quoteIdentifier } from './chdb-engine.js';
import { ClickHouseError } from './errors.js';
import { offlineMetrics } from './metrics.js';
import type { OfflineStore } from './store.js';
import { quoteString } from './store.js';

/**
 * The offline store's tables, one per topic: columns from the topic's Avro schema (feature
 * tables get one Nullable(Float64) column per feature), `_partition` and `_offset` of the record,
 * and a natural key that makes every write idempotent: the sink skips rows whose key is there
 * already, and the ReplacingMergeTree on the same key folds any duplicate a concurrent writer of a
 * ClickHouse server could still make.
 */
export interface Column {
  readonly name: string;
  readonly type: string;
}

export interface RecordMeta {
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
}

export interface TableSpec {
  /** The topic without the prefix, e.g. events.transactions. */
  readonly topic: string;
  /** The ClickHouse table, e.g. events_transactions. */
  readonly name: string;
  readonly columns: readonly Column[];
  /** The natural key (also the sorting key): a row with the same key is the same fact. */
  readonly key: readonly string[];
  /** A decoded record as a row (undecoded for dlq, whose value is foreign bytes). */
  readonly toRow: (value: Record<string, unknown>, meta: RecordMeta) => Record<string, unknown>;
  /** Whether the sink decodes values as Avro (false: the dlq, whose facts are in headers). */
  readonly avro: boolean;
}

const META_COLUMNS: Column[] = [
  { name: '_partition', type: 'Int32' },
  { name: '_offset', type: 'Int64' },
];

export function tableName(topic: string): string {
  return topic.replaceAll('.', '_');
}

/** Every table of the platform: sources' events, feature views, monitoring, registries, dead letters. */
export function offlineTables(options: {
  readonly sources: readonly SourceDefinition[];
  readonly views: readonly FeatureView[];
}): TableSpec[] {
  return [
    ...options.sources.map((source) => avroTable(`events.${source.name}`, ['event_time', 'event_id'], source.eventsSchema)),
    ...options.views.map(featureTable),
    avroTable('monitoring.quality', ['source', 'check', 'window_start', '_partition', '_offset']),
    // Monitoring records have natural keys: a backfill of a range skips the rows the stages wrote.
    avroTable('monitoring.drift', ['model_name', 'model_version', 'window_kind', 'window_start', 'window_end', 'feature']),
    avroTable('monitoring.performance', ['model_name', 'model_version', 'stage', 'window_start']),
    avroTable('monitoring.alerts', ['alert_id', 'state']),
    avroTable('monitoring.actions', ['action_id', 'status', 'at']),
    avroTable('monitoring.lag', ['group', 'at']),
    avroTable('monitoring.shadow', ['model_name', 'deployment_id', 'window_start']),
    avroTable('registry.features', ['name', 'version']),
    // Every record is a row (alias moves re-publish a version's record): the latest by _offset is current.
    avroTable('registry.models', ['name', 'version', '_partition', '_offset']),
    avroTable('registry.deployments', ['model_name', 'deployment_id', 'sequence', '_partition', '_offset']),
    avroTable('registry.readiness', ['deployment_id', 'instance', '_partition', '_offset']),
    avroTable('registry.experiments', ['experiment', 'run_id', 'started_at', '_partition', '_offset']),
    dlqTable(),
  ];
}

/** The table of one model's predictions (topic predictions.<model>). */
export function predictionsTable(model: string): TableSpec {
  return avroTable(`predictions.${model}`, ['event_time', 'event_id', 'model_version', 'deployment'], 'predictions');
}

/** The table of a shadow version's predictions of one model (topic predictions.<model>.shadow). */
export function shadowPredictionsTable(model: string): TableSpec {
  return avroTable(`predictions.${model}.shadow`, ['event_time', 'event_id', 'model_version', 'deployment'], 'predictions');
}

export const FEATURE_BASE_COLUMNS: Column[] = [
  { name: 'entity_id', type: 'String' },
  { name: 'event_time', type: "DateTime64(3, 'UTC')" },
  { name: 'event_id', type: 'String' },
  { name: 'view_version', type: 'Int32' },
  { name: 'event_sequence', type: 'Int64' },
  { name: 'window_start', type: "DateTime64(3, 'UTC')" },
  { name: 'window_end', type: "DateTime64(3, 'UTC')" },
];

/** features.<view>: one row per (entity, event, definition version), one column per feature. */
export function featureTable(view: FeatureView): TableSpec {
  const features = featureNames(view);
  for (const feature of features) {
    if ([...FEATURE_BASE_COLUMNS, ...META_COLUMNS].some((column) => column.name === feature)) {
      throw new Error(`feature ${view.name}.${feature} has the name of a column every feature table has`);
    }
  }
  return {
    topic: `features.${view.name}`,
    name: tableName(`features.${view.name}`),
    columns: [...FEATURE_BASE_COLUMNS, ...features.map((name) => ({ name, type: 'Nullable(Float64)' })), ...META_COLUMNS],
    key: ['entity_id', 'event_time', 'event_id', 'view_version'],
    avro: true,
    toRow: (value, meta) => {
      const values = (value.values ?? {}) as Record<string, number | null>;
      return {
        entity_id: value.entity_id,
        event_time: value.event_time,
        event_id: value.event_id ?? '',
        view_version: value.view_version,
        event_sequence: value.event_sequence ?? 0,
        window_start: value.window_start,
        window_end: value.window_end,
        ...Object.fromEntries(features.map((name) => [name, values[name] ?? null])),
        _partition: meta.partition,
        _offset: Number(meta.offset),
      };
    },
  };
}

interface AvroField {
  readonly name: string;
  readonly type: unknown;
}

function avroTable(
  topic: string,
  key: readonly string[],
  schemaOrFile: string | { readonly fields: readonly AvroField[] } = topic,
): TableSpec {
  const schema = (typeof schemaOrFile === 'string' ? loadAvsc(schemaOrFile) : schemaOrFile) as { fields: AvroField[] };
  const mapped = schema.fields.map((field) => ({ field, ...clickhouseType(field.type) }));
  return {
    topic,
    name: tableName(topic),
    columns: [...mapped.map(({ field, type }) => ({ name: field.name, type })), ...META_COLUMNS],
    key,
    avro: true,
    toRow: (value, meta) => {
      const row: Record<string, unknown> = {};
      for (const { field, json } of mapped) {
        const fieldValue = value[field.name];
        row[field.name] = json && fieldValue !== null && fieldValue !== undefined ? JSON.stringify(fieldValue, bigintReplacer) : fieldValue;
      }
      row._partition = meta.partition;
      row._offset = Number(meta.offset);
      return row;
    },
  };
}

function dlqTable(): TableSpec {
  const base = avroTable('dlq', ['failed_at', '_partition', '_offset']);
  return {
    ...base,
    avro: false,
    toRow: (value, meta) => {
      const header = (name: string): string => meta.headers[`sluice.dlq.${name}`] ?? '';
      return {
        stage: header('stage'),
        error_class: header('error.class'),
        error_code: header('error.code'),
        error_message: header('error.message'),
        topic: header('topic'),
        partition: Number(header('partition') || -1),
        offset: Number(header('offset') || -1),
        timestamp: Number(header('timestamp') || 0),
        attempts: Number(header('attempts') || 0),
        key: meta.key ? meta.key.toString('base64') : null,
        value: Buffer.isBuffer(value.bytes) ? value.bytes.toString('base64') : null,
        headers: Object.fromEntries(Object.entries(meta.headers).filter(([name]) => !name.startsWith('sluice.dlq.'))),
        failed_at: meta.timestamp,
        _partition: meta.partition,
        _offset: Number(meta.offset),
      };
    },
  };
}

/** The ClickHouse type of an Avro type; `json` when the value is stored as JSON text. */
function clickhouseType(type: unknown): { type: string; json: boolean } {
  if (Array.isArray(type)) {
    const branches: unknown[] = type.filter((branch) => branch !== 'null');
    const only = branches[0];
    if (branches.length === 1 && type.length === 2) {
      const inner = clickhouseType(only);
      return inner.type.startsWith('Map(') || inner.type.startsWith('Array(') || inner.type.startsWith('LowCardinality(')
        ? inner
        : { type: `Nullable(${inner.type})`, json: inner.json };
    }
    return { type: 'String', json: true };
  }
  if (typeof type === 'string') {
    switch (type) {
      case 'string':
        return { type: 'String', json: false };
      case 'bytes':
        return { type: 'String', json: false };
      case 'boolean':
        return { type: 'Bool', json: false };
      case 'int':
        return { type: 'Int32', json: false };
      case 'long':
        return { type: 'Int64', json: false };
      case 'float':
        return { type: 'Float32', json: false };
      case 'double':
        return { type: 'Float64', json: false };
      default:
        return { type: 'String', json: true };
    }
  }
  const node = type as { type: unknown; logicalType?: string; precision?: number; scale?: number; values?: unknown; symbols?: unknown };
  if (node.logicalType === 'timestamp-millis') return { type: "DateTime64(3, 'UTC')", json: false };
  if (node.logicalType === 'decimal') return { type: `Decimal(${node.precision ?? 18}, ${node.scale ?? 0})`, json: false };
  if (node.type === 'enum') return { type: 'LowCardinality(String)', json: false };
  if (node.type === 'map') {
    const values = clickhouseType(node.values);
    if (!values.json) return { type: `Map(String, ${values.type})`, json: false };
    return { type: 'String', json: true };
  }
  if (typeof node.type === 'string' && !['record', 'array', 'fixed'].includes(node.type)) return clickhouseType(node.type);
  return { type: 'String', json: true };
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? Number(value) : value;
}

/** Creates missing tables and adds missing columns (never drops): the code's tables, migrated. */
export async function ensureTables(store: OfflineStore, tables: readonly TableSpec[]): Promise<void> {
  for (const table of tables) {
    const columns = table.columns.map((column) => `${quoteIdentifier(column.name)} ${column.type}`).join(', ');
    const key = table.key.map(quoteIdentifier).join(', ');
    await store.command(
      `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(table.name)} (${columns}) ENGINE = ReplacingMergeTree ORDER BY (${key})`,
    );
    const existing = new Set(
      (
        await store.query<{ name: string }>(
          `SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ${quoteString(table.name)}`,
        )
      ).map((row) => row.name),
    );
    for (const column of table.columns) {
      if (!existing.has(column.name))
        await store.command(
          `ALTER TABLE ${quoteIdentifier(table.name)} ADD COLUMN IF NOT EXISTS ${quoteIdentifier(column.name)} ${column.type}`,
        );
    }
  }
}

/** Where `insertNew` reports a table it had to create again. */
export interface InsertHooks {
  readonly metrics?: MetricsRegistry;
  readonly logger?: Logger;
}

/** Errors of a table or column that is not there (dropped): 60 UNKNOWN_TABLE, 16 NO_SUCH_COLUMN_IN_TABLE, 47 UNKNOWN_IDENTIFIER. */
const MISSING_TABLE_OR_COLUMN = new Set([60, 16, 47]);

/**
 * Inserts the rows whose key is not in the table yet (nor earlier in the batch) and returns how
 * many were new. With one writer per table (the sink, or a job of the process that owns the
 * embedded store), replays and redeliveries never double-count. A platform table that has gone
 * (dropped) is created again (`ensureTables`), counted in sluice_offline_tables_recreated_total,
 * and the insert retried once: a missing table never stops the sink.
 */
export async function insertNew(
  store: OfflineStore,
  table: TableSpec,
  rows: readonly Record<string, unknown>[],
  hooks: InsertHooks = {},
): Promise<number> {
  try {
    return await insertNewOnce(store, table, rows);
  } catch (error) {
    if (!(error instanceof ClickHouseError) || !MISSING_TABLE_OR_COLUMN.has(error.clickhouseCode)) throw error;
    hooks.logger?.warn({ table: table.name, err: error }, 'offline table missing or incomplete; creating it again and retrying the insert');
    await ensureTables(store, [table]);
    if (hooks.metrics) offlineMetrics(hooks.metrics).tablesRecreated.inc({ table: table.name });
    return insertNewOnce(store, table, rows);
  }
}

async function insertNewOnce(store: OfflineStore, table: TableSpec, rows: readonly Record<string, unknown>[]): Promise<number> {
  if (rows.length === 0) return 0;
  const types = new Map(table.columns.map((column) => [column.name, column.type]));
  const keyOf = (row: Record<string, unknown>): string =>
    JSON.stringify(table.key.map((column) => keyValue(row[column], types.get(column) ?? 'String')));
  const unique = new Map<string, Record<string, unknown>>();
  for (const row of rows) unique.set(keyOf(row), row);
  const expressions = table.key.map((column) =>
    types.get(column)?.startsWith('DateTime64') ? `toUnixTimestamp64Milli(${quoteIdentifier(column)})` : quoteIdentifier(column),
  );
  const present = new Set<string>();
  // Key lists are sent as literals: chunks stay well under ClickHouse's max_query_size (256 KiB).
  const lookup = async (tuples: string[]): Promise<void> => {
    const found = await store.query<{ k: unknown[] }>(
      `SELECT (${expressions.join(', ')}) AS k FROM ${quoteIdentifier(table.name)} WHERE (${expressions.join(', ')}) IN (${tuples.join(', ')})`,
    );
    for (const { k } of found)
      present.add(
        JSON.stringify(table.key.map((column, index) => keyValue(Array.isArray(k) ? k[index] : k, types.get(column) ?? 'String'))),
      );
  };
  let chunk: string[] = [];
  let chunkBytes = 0;
  for (const row of unique.values()) {
    const tuple = `(${table.key.map((column) => literal(keyValue(row[column], types.get(column) ?? 'String'))).join(', ')})`;
    if (chunkBytes + tuple.length > 150_000) {
      await lookup(chunk);
      chunk = [];
      chunkBytes = 0;
    }
    chunk.push(tuple);
    chunkBytes += tuple.length + 2;
  }
  if (chunk.length > 0) await lookup(chunk);
  const fresh = [...unique.entries()].filter(([key]) => !present.has(key)).map(([, row]) => row);
  await store.insert(quoteIdentifier(table.name), fresh);
  return fresh.length;
}

/** Key values normalized so a row's key and ClickHouse's answer compare equal. */
function keyValue(value: unknown, type: string): string | number {
  if (/^(U?Int|DateTime64)/.test(type)) return Number(value);
  if (value === null || value === undefined) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function literal(value: string | number): string {
  return typeof value === 'number' ? String(value) : quoteString(value);
}
