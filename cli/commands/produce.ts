import fs from 'node:fs/promises';
import kafkajs from 'kafkajs';
import { ConfigError } from '../../common/errors.js';
import { createKafka } from '../../kafka/index.js';
import { DEMO_RATE, demoHistory } from '../../app/demo.js';
import { runDemoProducer } from '../../app/demo-producer.js';
import { commandTopology } from '../topology.js';
import type { CommandContext } from '../action.js';
import { findCluster } from '../cluster.js';

const { Partitioners } = kafkajs;

export interface ProduceOptions {
  readonly demo?: boolean;
  readonly seed: string;
  readonly history?: string;
  readonly rate?: string;
  readonly driftAt?: string;
}

/**
 * `sluice produce <source> <file>`: sends NDJSON or CSV records (by extension) to raw.<source> as
 * JSON, keyed by the source's entity field. `sluice produce --demo`: the demo generator.
 */
export async function produceCommand(
  context: CommandContext,
  sourceName: string | undefined,
  file: string | undefined,
  options: ProduceOptions,
): Promise<number> {
  const topology = await commandTopology(context.config);
  const cluster = await findCluster(context.config);
  const kafka = createKafka({ brokers: cluster.brokers, clientId: 'sluice-produce', logger: context.logger });
  if (options.demo) {
    const abort = new AbortController();
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => abort.abort());
    const driftFrom =
      options.driftAt === undefined ? undefined : /^\d+$/.test(options.driftAt) ? Number(options.driftAt) : Date.parse(options.driftAt);
    const rate = options.rate === undefined ? DEMO_RATE : Number(options.rate);
    const history = demoHistory(rate, options.history === undefined ? undefined : Number(options.history));
    if (!Number.isFinite(rate) || rate < 0 || !Number.isFinite(history.historyEvents) || history.historyEvents < 0)
      throw new ConfigError(`--rate and --history take non-negative numbers, got "${options.rate ?? ''}" and "${options.history ?? ''}"`);
    process.stdout.write(
      `producing demo events (history ${history.historyEvents} over ${history.historySpanMs / 3_600_000} h, then ${rate}/s; Ctrl-C stops)\n`,
    );
    await runDemoProducer({
      kafka,
      topicPrefix: context.config.topicPrefix,
      topology,
      seed: Number(options.seed),
      ...history,
      rate,
      ...(driftFrom !== undefined && Number.isFinite(driftFrom) ? { driftFrom } : {}),
      signal: abort.signal,
      logger: context.logger,
      onHistorySent: (counts) => process.stdout.write(`history sent: ${JSON.stringify(counts)}\n`),
    });
    return 0;
  }
  const source = topology.sources.find((candidate) => candidate.name === sourceName);
  if (!source || !file)
    throw new ConfigError(
      `usage: sluice produce <source> <file.ndjson|file.csv> (sources of ${topology.name}: ${topology.sources.map((candidate) => candidate.name).join(', ')}) or sluice produce --demo`,
    );
  const text = await fs.readFile(file, 'utf8');
  const records = file.endsWith('.csv')
    ? parseCsv(text).map((row) => typedBySchema(row, source.rawSchema))
    : text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line, index) => {
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch (error) {
            throw new ConfigError(`${file}:${index + 1} is not JSON: ${(error as Error).message}`);
          }
        });
  const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let start = 0; start < records.length; start += 5_000) {
      await producer.send({
        topic: `${context.config.topicPrefix}raw.${source.name}`,
        acks: -1,
        messages: records
          .slice(start, start + 5_000)
          .map((record) => ({ key: entityKey(record[source.entityField]), value: JSON.stringify(record) })),
      });
    }
  } finally {
    await producer.disconnect();
  }
  process.stdout.write(`sent ${records.length} records to ${context.config.topicPrefix}raw.${source.name}\n`);
  return 0;
}

function entityKey(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '';
}

/**
 * CSV cells (strings) typed by the raw schema: numeric fields become numbers, booleans true/false,
 * timestamps (timestamp-millis) take epoch milliseconds or an ISO time; the rest stay text.
 */
export function typedBySchema(row: Readonly<Record<string, string>>, schema: unknown): Record<string, unknown> {
  const fields = (schema as { fields: { name: string; type: unknown }[] }).fields;
  const kinds = new Map(fields.map((field) => [field.name, cellKind(field.type)]));
  return Object.fromEntries(Object.entries(row).map(([name, cell]) => [name, typedCell(cell, kinds.get(name))]));
}

type CellKind = 'number' | 'timestamp' | 'boolean' | 'text';

function typedCell(cell: string, kind: CellKind | undefined): unknown {
  const numeric = /^-?\d+(\.\d+)?$/.test(cell);
  if ((kind === 'number' || kind === 'timestamp') && numeric) return Number(cell);
  if (kind === 'timestamp') {
    const time = Date.parse(cell);
    return Number.isFinite(time) ? time : cell;
  }
  if (kind === 'boolean' && (cell === 'true' || cell === 'false')) return cell === 'true';
  return cell;
}

/** How a field's cells are read (a union: its first non-null branch). */
function cellKind(type: unknown): CellKind {
  if (Array.isArray(type)) {
    const branch: unknown = (type as unknown[]).find((candidate) => candidate !== 'null');
    return branch === undefined ? 'text' : cellKind(branch);
  }
  if (typeof type === 'string') {
    if (['int', 'long', 'float', 'double'].includes(type)) return 'number';
    return type === 'boolean' ? 'boolean' : 'text';
  }
  const node = type as { type?: unknown; logicalType?: string };
  if (node.logicalType === 'timestamp-millis') return 'timestamp';
  if (node.logicalType === 'decimal') return 'number';
  return typeof node.type === 'string' ? cellKind(node.type) : 'text';
}

/** CSV with a header row; quoted fields with "" escapes; empty cells are left out. */
export function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index] ?? '';
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') {
        field += '"';
        index++;
      } else if (char === '"') {
        quoted = false;
      } else {
        field += char;
      }
    } else if (char === '"') {
      quoted = true;
    } else if (char === ',') {
      row.push(field);
      field = '';
    } else if (char === '\n' || char === '\r') {
      if (char === '\r' && text[index + 1] === '\n') index++;
      row.push(field);
      if (row.some((cell) => cell !== '')) rows.push(row);
      row = [];
      field = '';
    } else {
      field += char;
    }
  }
  row.push(field);
  if (row.some((cell) => cell !== '')) rows.push(row);
  const [header, ...body] = rows;
  if (!header) return [];
  return body.map((cells) =>
    Object.fromEntries(
      header.flatMap((name, column) => {
        const cell = cells[column] ?? '';
        if (cell === '') return [];
        return [[name.trim(), cell]];
      }),
    ),
  );
}
