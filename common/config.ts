import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from './errors.js';

/**
 * The repository root: the nearest folder above this file holding package.json (this file lives
 * in common/, or in dist/common/ when the CLI runs compiled).
 */
export const PROJECT_ROOT = packageRoot(path.dirname(fileURLToPath(import.meta.url)));

function packageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '..');
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();

/**
 * Every environment variable sluice reads, with its default. Only entry points (the CLI, jobs,
 * test helpers) call loadConfig; library code takes the resulting object.
 */
const environmentSchema = z.strictObject({
  SLUICE_DATA_DIR: z.string().min(1).optional(),
  SLUICE_CACHE_DIR: z.string().min(1).optional(),
  SLUICE_TOPOLOGY: z.string().min(1).optional(),
  SLUICE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SLUICE_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')
    .default(''),
  SLUICE_PARTITIONS: positiveInt.default(6),
  SLUICE_KAFKA_VERSION: z
    .string()
    .regex(/^\d+\.\d+\.\d+$/, 'a version such as 4.4.0')
    .default('4.4.0'),
  SLUICE_KAFKA_PORT: port.default(0),
  SLUICE_KAFKA_CONTROLLER_PORT: port.default(0),
  SLUICE_KAFKA_HEAP: z
    .string()
    .regex(/^\d+[mg]$/, 'a JVM size such as 512m or 1g')
    .default('512m'),
  SLUICE_KAFKA_START_TIMEOUT_MS: positiveInt.default(90_000),
  SLUICE_KAFKA_STOP_TIMEOUT_MS: positiveInt.default(20_000),
  SLUICE_GUARANTEE: z.enum(['exactly_once', 'at_least_once']).default('exactly_once'),
  SLUICE_MAX_IN_FLIGHT: positiveInt.default(10_000),
  SLUICE_COMMIT_INTERVAL_MS: positiveInt.default(100),
  SLUICE_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_METRICS_PORT: port.default(0),
  SLUICE_SQL_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_SQL_PORT: port.default(0),
  SLUICE_SQL_WRITABLE: z.enum(['true', 'false']).default('false'),
  SLUICE_ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  SLUICE_SCHEMA_REGISTRY_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_SCHEMA_REGISTRY_PORT: port.default(0),
  KAFKA_BROKERS: z.string().min(1).optional(),
  SCHEMA_REGISTRY_URL: z.url({ protocol: /^https?$/ }).optional(),
  CLICKHOUSE_URL: z.url({ protocol: /^https?$/ }).optional(),
  JAVA_HOME: z.string().min(1).optional(),
});

export interface SluiceConfig {
  readonly dataDir: string;
  readonly cacheDir: string;
  /** The topology file or folder (SLUICE_TOPOLOGY, or --topology); else ./sluice.config.ts. */
  readonly topology: string | undefined;
  readonly logLevel: z.infer<typeof environmentSchema>['SLUICE_LOG_LEVEL'];
  readonly topicPrefix: string;
  readonly defaultPartitions: number;
  readonly kafka: {
    /** Set when KAFKA_BROKERS names an existing cluster; then no local broker is started. */
    readonly externalBrokers: readonly string[] | undefined;
    readonly version: string;
    readonly port: number;
    readonly controllerPort: number;
    readonly heap: string;
    readonly startTimeoutMs: number;
    readonly stopTimeoutMs: number;
    readonly javaHome: string | undefined;
  };
  readonly stages: {
    readonly guarantee: 'exactly_once' | 'at_least_once';
    readonly maxInFlight: number;
    readonly commitIntervalMs: number;
  };
  /** The embedded ClickHouse's HTTP SQL endpoint (read-only for users unless writable). */
  readonly sql: { readonly host: string; readonly port: number; readonly writable: boolean };
  /** Where alerts are POSTed as JSON (SLUICE_ALERT_WEBHOOK_URL); none when unset. */
  readonly alerts: { readonly webhookUrl: string | undefined };
  /** Where /metrics, /health and /ready are served (0 picks a free port). */
  readonly metrics: { readonly host: string; readonly port: number };
  /** The offline store: a ClickHouse server (`http://user:password@host:8123/database`), else embedded chDB. */
  readonly clickhouse: { readonly url: string | undefined };
  readonly schemaRegistry: {
    /** Set when SCHEMA_REGISTRY_URL names a Confluent-compatible registry; then none is started. */
    readonly externalUrl: string | undefined;
    readonly host: string;
    /** 0 picks a free port (the previous one when still free). */
    readonly port: number;
  };
}

/** Variables outside sluice's namespace that it reads. */
const FOREIGN_KEYS = new Set(['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'CLICKHOUSE_URL', 'JAVA_HOME']);

/**
 * Parses the environment into a frozen config. Unknown SLUICE_* variables are rejected, so a
 * typo such as SLUICE_DATADIR fails loudly instead of being ignored.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): SluiceConfig {
  const relevant: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || value === '') continue;
    if (key.startsWith('SLUICE_') || FOREIGN_KEYS.has(key)) relevant[key] = value;
  }
  const parsed = environmentSchema.safeParse(relevant);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) =>
      issue.code === 'unrecognized_keys' ? `unknown setting ${issue.keys.join(', ')}` : `${issue.path.join('.')}: ${issue.message}`,
    );
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  let externalBrokers: string[] | undefined;
  if (e.KAFKA_BROKERS !== undefined) {
    try {
      externalBrokers = parseBrokers(e.KAFKA_BROKERS);
    } catch (cause) {
      throw new ConfigError(`invalid configuration: KAFKA_BROKERS: ${(cause as Error).message}`, { cause });
    }
  }
  return deepFreeze({
    dataDir: path.resolve(cwd, e.SLUICE_DATA_DIR ?? '.sluice'),
    cacheDir: path.resolve(cwd, e.SLUICE_CACHE_DIR ?? path.join(PROJECT_ROOT, '.cache')),
    topology: e.SLUICE_TOPOLOGY === undefined ? undefined : path.resolve(cwd, e.SLUICE_TOPOLOGY),
    logLevel: e.SLUICE_LOG_LEVEL,
    topicPrefix: e.SLUICE_TOPIC_PREFIX,
    defaultPartitions: e.SLUICE_PARTITIONS,
    kafka: {
      externalBrokers,
      version: e.SLUICE_KAFKA_VERSION,
      port: e.SLUICE_KAFKA_PORT,
      controllerPort: e.SLUICE_KAFKA_CONTROLLER_PORT,
      heap: e.SLUICE_KAFKA_HEAP,
      startTimeoutMs: e.SLUICE_KAFKA_START_TIMEOUT_MS,
      stopTimeoutMs: e.SLUICE_KAFKA_STOP_TIMEOUT_MS,
      javaHome: e.JAVA_HOME,
    },
    stages: {
      guarantee: e.SLUICE_GUARANTEE,
      maxInFlight: e.SLUICE_MAX_IN_FLIGHT,
      commitIntervalMs: e.SLUICE_COMMIT_INTERVAL_MS,
    },
    metrics: { host: e.SLUICE_METRICS_HOST, port: e.SLUICE_METRICS_PORT },
    sql: { host: e.SLUICE_SQL_HOST, port: e.SLUICE_SQL_PORT, writable: e.SLUICE_SQL_WRITABLE === 'true' },
    alerts: { webhookUrl: e.SLUICE_ALERT_WEBHOOK_URL },
    clickhouse: { url: e.CLICKHOUSE_URL },
    schemaRegistry: {
      externalUrl: e.SCHEMA_REGISTRY_URL?.replace(/\/+$/, ''),
      host: e.SLUICE_SCHEMA_REGISTRY_HOST,
      port: e.SLUICE_SCHEMA_REGISTRY_PORT,
    },
  });
}

/** Parses `host:port,host:port`, rejecting empty or port-less entries. */
export function parseBrokers(value: string): string[] {
  const brokers = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (brokers.length === 0) throw new Error('no brokers listed');
  for (const broker of brokers) {
    const separator = broker.lastIndexOf(':');
    const portText = broker.slice(separator + 1);
    const portNumber = Number(portText);
    if (separator <= 0 || !/^\d+$/.test(portText) || portNumber < 1 || portNumber > 65535) {
      throw new Error(`"${broker}" is not host:port`);
    }
  }
  return brokers;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
