import type { Logger } from 'pino';
import type { MetricsRegistry } from '../../common/metrics.js';
import { retry } from '../../common/retry.js';
import { ClickHouseError } from '../../offline/errors.js';
import type { OfflineStore } from '../../offline/store.js';
import { insertNew, type TableSpec } from '../../offline/tables.js';
import { AvroSerde } from '../../schemas/index.js';
import { stageMetrics } from '../runtime/metrics.js';
import { runStage, type RawRecord, type RunningStage, type StageDefinition } from '../runtime/index.js';

/**
 * The sink: every table's topic → ClickHouse, a stage on the runtime like any other. A commit
 * first inserts the rows of its records (idempotently: rows whose natural key is present are
 * skipped), then commits their offsets — at-least-once delivery with idempotent writes, so a crash
 * between insert and commit, a reset consumer group or a replayed topic never double-counts.
 * Records that do not decode go to the dead-letter topic, counted. Waiting on ClickHouse never
 * costs the group membership: the runtime's consumer keeps fetching and heartbeating meanwhile.
 */
export interface SinkOptions {
  readonly brokers: readonly string[];
  readonly groupId: string;
  readonly topicPrefix: string;
  readonly tables: readonly TableSpec[];
  readonly store: OfflineStore;
  readonly registryUrl: string;
  readonly dlqTopic: string;
  readonly metrics: MetricsRegistry;
  readonly logger: Logger;
  readonly maxBytesPerPartition?: number;
}

export interface RunningSink {
  /** Rows inserted and duplicates skipped so far. */
  status(): { readonly inserted: number; readonly duplicates: number; readonly joined: boolean };
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

interface Row {
  readonly table: TableSpec;
  readonly row: Record<string, unknown>;
}

type Value = Record<string, unknown> | null;

export function sinkStage(options: SinkOptions, counters: { inserted: number; duplicates: number }): StageDefinition<Value> {
  const stage = 'sink';
  const logger = options.logger.child({ stage });
  const metrics = stageMetrics(options.metrics);
  const serde = new AvroSerde(options.registryUrl);
  const byTopic = new Map(options.tables.map((table) => [`${options.topicPrefix}${table.topic}`, table]));
  /** Rows processed and not yet handed to a commit, per task. */
  const buffers = new Map<string, Row[]>();
  const tableOf = (topic: string): TableSpec => {
    const table = byTopic.get(topic);
    if (!table) throw new Error(`the sink has no table for ${topic}`);
    return table;
  };

  // ---- inputs ------------------------------------------------------------------------------
  const decode = async (raw: RawRecord): Promise<Value> => {
    const table = tableOf(raw.topic);
    if (!table.avro) return { bytes: raw.value };
    return raw.value ? ((await serde.decode(raw.value)) as Record<string, unknown>) : null;
  };

  // ---- outputs: the insert, before the commit of the offsets ---------------------------------
  const insert = async (rows: readonly Row[]): Promise<void> => {
    const byTable = new Map<TableSpec, Record<string, unknown>[]>();
    for (const { table, row } of rows) byTable.set(table, [...(byTable.get(table) ?? []), row]);
    for (const [table, tableRows] of byTable) {
      // The store may be briefly unavailable (a ClickHouse server restarting): retried with backoff.
      const fresh = await retry(() => insertNew(options.store, table, tableRows, { metrics: options.metrics, logger }), {
        attempts: 5,
        initialDelayMs: 200,
        maxDelayMs: 5_000,
        // Syntax and schema errors (4xx) will not heal; connection problems and server errors may.
        isRetriable: (error: unknown) => !(error instanceof ClickHouseError) || error.httpStatus >= 500,
        onRetry: (error: unknown, attempt: number) => logger.warn({ err: error, table: table.name, attempt }, 'insert failed; retrying'),
      });
      counters.inserted += fresh;
      counters.duplicates += tableRows.length - fresh;
      metrics.sinkRows.inc({ table: table.name }, fresh);
      if (tableRows.length > fresh) metrics.sinkDuplicates.inc({ table: table.name }, tableRows.length - fresh);
    }
  };

  return {
    name: stage,
    inputs: [...byTopic.keys()],
    decode,
    // ---- transformation: a record becomes a row of its table, kept for the commit ------------
    process: (record, context) => {
      if (record.value === null) return [];
      const table = tableOf(record.topic);
      const row = table.toRow(record.value, {
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: record.raw.key,
        headers: record.headers,
      });
      const buffer = buffers.get(context.task) ?? [];
      buffer.push({ table, row });
      buffers.set(context.task, buffer);
      return [];
    },
    beforeCommit: (task) => {
      const rows = buffers.get(task);
      if (!rows || rows.length === 0) return undefined;
      buffers.delete(task);
      return () => insert(rows);
    },
    // Rows of records that will be processed again are dropped with them.
    onPartitionReset: (topic, partition) => buffers.delete(`${topic}.${partition}`),
  };
}

export async function runSink(options: SinkOptions): Promise<RunningSink> {
  const counters = { inserted: 0, duplicates: 0 };
  const stage: RunningStage = await runStage(sinkStage(options, counters), {
    brokers: options.brokers,
    groupId: options.groupId,
    dlqTopic: options.dlqTopic,
    guarantee: 'at_least_once',
    commitMaxRecords: 10_000,
    commitIntervalMs: 500,
    maxBytesPerPartition: options.maxBytesPerPartition ?? 4 * 1024 * 1024,
    metrics: options.metrics,
    logger: options.logger,
  });
  return {
    done: stage.done,
    status: () => {
      const status = stage.status();
      return { inserted: counters.inserted, duplicates: counters.duplicates, joined: status.joined };
    },
    stop: () => stage.stop(),
  };
}
