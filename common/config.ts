import { existsSync, readFileSync } from 'node:fs';
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

/**
 * The state cache of a process, in MiB of serialized entries (the objects take a few times that in
 * the heap), with the features' kept windows counted beside their heads. Kafka Streams' default is
 * 10 MiB of bytes, re-read and deserialized per access; this cache holds objects, so a larger one
 * saves the deserialization of hot entities' histories. 128: the memory run's working set (5,000
 * cards, up to 700 distinct merchants each in a day's window) reached 52 MiB counted in ten minutes,
 * and its distinct-value tables stop at about 61 MiB; an active entity evicted costs its whole
 * history at its next event, so a working set beyond the bound falls behind.
 */
export const DEFAULT_STATE_CACHE_MB = 128;

/**
 * Records a stage holds admitted and uncommitted, at most (all its tasks together). Under a
 * backlog the bound, not the commit interval, sets how many records a commit carries: with six
 * tasks sharing 10,000, the features stage's commits carried about 720 records each, and the
 * fixed cost of a transaction per task per commit (the offsets, EndTxn and its markers) took the
 * share.
 * Measured over 100,000 demo events, three interleaved runs each (`npm run bench -- pipeline
 * --backlog`, median events/s and peak RSS of the pipeline): 10,000: 7,586/s, 585 MiB;
 * 20,000: 10,185/s, 646–672 MiB; 40,000: 9,593/s, 748–770 MiB. The features stage alone
 * (`npm run bench -- features --stage-only`): 10,499–12,817, 13,840–17,114 and 15,993–17,497
 * events/s. A live stream below what the stage sustains stays far under the bound.
 */
export const DEFAULT_MAX_IN_FLIGHT = 20_000;

const positiveInt = z.coerce.number().int().positive();
const flag = z.enum(['true', 'false']);

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
  SLUICE_MAX_IN_FLIGHT: positiveInt.default(DEFAULT_MAX_IN_FLIGHT),
  SLUICE_COMMIT_INTERVAL_MS: positiveInt.default(100),
  SLUICE_STATE_CACHE_MB: positiveInt.default(DEFAULT_STATE_CACHE_MB),
  // Below kafkajs' request timeout (30 s), which a fetch does not extend: an idle fetch would time out.
  SLUICE_FETCH_MAX_WAIT_MS: positiveInt.max(10_000).default(50),
  SLUICE_FETCH_MIN_BYTES: positiveInt.default(1024 * 1024),
  SLUICE_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_METRICS_PORT: port.default(0),
  SLUICE_METRICS_ADVERTISED_HOST: z.string().min(1).optional(),
  SLUICE_SQL_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_SQL_PORT: port.default(0),
  SLUICE_SQL_WRITABLE: flag.default('false'),
  SLUICE_SQL_MAX_EXECUTION_TIME: positiveInt.default(30),
  SLUICE_SQL_MAX_RESULT_ROWS: positiveInt.default(1_000_000),
  SLUICE_SQL_MAX_RESULT_BYTES: positiveInt.default(256 * 1024 * 1024),
  SLUICE_SQL_MAX_MEMORY: positiveInt.default(2 * 1024 * 1024 * 1024),
  SLUICE_SQL_MAX_CONCURRENT_QUERIES: positiveInt.max(64).optional(),
  SLUICE_AUTH_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  SLUICE_AUTH_TOKEN_FILE: z.string().min(1).optional(),
  SLUICE_SQL_AUTH_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  SLUICE_SQL_AUTH_TOKEN_FILE: z.string().min(1).optional(),
  SLUICE_REGISTRY_AUTH_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  SLUICE_REGISTRY_AUTH_TOKEN_FILE: z.string().min(1).optional(),
  SLUICE_OPS_AUTH_TOKEN: z.string().min(16, 'at least 16 characters').optional(),
  SLUICE_OPS_AUTH_TOKEN_FILE: z.string().min(1).optional(),
  SLUICE_KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  SLUICE_KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  SLUICE_KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  SLUICE_KAFKA_SASL_PASSWORD_FILE: z.string().min(1).optional(),
  SLUICE_KAFKA_TLS: flag.default('false'),
  SLUICE_KAFKA_TLS_CA_FILE: z.string().min(1).optional(),
  SLUICE_KAFKA_TLS_CERT_FILE: z.string().min(1).optional(),
  SLUICE_KAFKA_TLS_KEY_FILE: z.string().min(1).optional(),
  SLUICE_KAFKA_TLS_REJECT_UNAUTHORIZED: flag.default('true'),
  SLUICE_ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  SLUICE_SCHEMA_REGISTRY_HOST: z.string().min(1).default('127.0.0.1'),
  SLUICE_SCHEMA_REGISTRY_PORT: port.default(0),
  KAFKA_BROKERS: z.string().min(1).optional(),
  SCHEMA_REGISTRY_URL: z.url({ protocol: /^https?$/ }).optional(),
  CLICKHOUSE_URL: z.url({ protocol: /^https?$/ }).optional(),
  JAVA_HOME: z.string().min(1).optional(),
  UV_THREADPOOL_SIZE: positiveInt.max(1024).optional(),
  OTEL_SDK_DISABLED: flag.optional(),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'console', 'none']).optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
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
    /** SASL and TLS for an external cluster (KAFKA_BROKERS); undefined: plaintext, no authentication. */
    readonly security: KafkaSecurity | undefined;
  };
  readonly stages: {
    readonly guarantee: 'exactly_once' | 'at_least_once';
    readonly maxInFlight: number;
    readonly commitIntervalMs: number;
    /** The bytes (serialized) the stores' object caches of one process may hold, all tasks together. */
    readonly stateCacheMaxBytes: number;
    /** A fetch returns once it has fetchMinBytes or has waited fetchMaxWaitMs (fetch.min.bytes, fetch.max.wait.ms). */
    readonly fetchMinBytes: number;
    readonly fetchMaxWaitMs: number;
  };
  /**
   * The embedded ClickHouse's HTTP SQL endpoint and the bounds of users' queries. `writable` is
   * always false (SLUICE_SQL_WRITABLE=true is refused): users read, sluice's jobs write through
   * the writer socket.
   */
  readonly sql: { readonly host: string; readonly port: number; readonly writable: boolean; readonly limits: SqlLimits };
  /**
   * Tokens that authenticate clients, per surface (each the surface's own setting, else
   * SLUICE_AUTH_TOKEN[_FILE]). Empty: no authentication, which only loopback addresses allow.
   */
  readonly auth: { readonly sql: readonly string[]; readonly registry: readonly string[]; readonly ops: readonly string[] };
  /** Where alerts are POSTed as JSON (SLUICE_ALERT_WEBHOOK_URL); none when unset. */
  readonly alerts: { readonly webhookUrl: string | undefined };
  /**
   * Where /metrics, /health and /ready are served (0 picks a free port); `advertisedHost`: the
   * host Prometheus reaches it by (written to its file-SD target), when not the bound one.
   */
  readonly metrics: { readonly host: string; readonly port: number; readonly advertisedHost: string | undefined };
  /** The offline store: a ClickHouse server (`http://user:password@host:8123/database`), else embedded chDB. */
  readonly clickhouse: { readonly url: string | undefined };
  readonly schemaRegistry: {
    /** Set when SCHEMA_REGISTRY_URL names a Confluent-compatible registry; then none is started. */
    readonly externalUrl: string | undefined;
    readonly host: string;
    /** 0 picks a free port (the previous one when still free). */
    readonly port: number;
  };
  /**
   * OpenTelemetry tracing, from the standard variables: off unless OTEL_TRACES_EXPORTER is otlp or
   * console, or an OTLP endpoint is set (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT); OTEL_SDK_DISABLED=true
   * turns it off. The OTLP exporter reads its own OTEL_EXPORTER_OTLP_* settings.
   */
  readonly tracing: { readonly exporter: 'otlp' | 'console' | 'none'; readonly serviceName: string | undefined };
}

/** What users' SQL may use: ClickHouse's own limits, applied to every user query and unchangeable by it. */
export interface SqlLimits {
  /** max_execution_time, seconds. */
  readonly maxExecutionTimeS: number;
  readonly maxResultRows: number;
  readonly maxResultBytes: number;
  /** max_memory_usage of one query, bytes. */
  readonly maxMemoryBytes: number;
  /**
   * Users' queries that run at once; more wait (up to the execution time) for a free slot. Each
   * running query holds one of Node's libuv threads, which the sink's inserts, RocksDB and
   * onnxruntime also need: at most UV_THREADPOOL_SIZE − 3 (so 1 with Node's default of 4).
   */
  readonly maxConcurrentQueries: number;
}

export const DEFAULT_SQL_LIMITS: SqlLimits = Object.freeze({
  maxExecutionTimeS: 30,
  maxResultRows: 1_000_000,
  maxResultBytes: 256 * 1024 * 1024,
  maxMemoryBytes: 2 * 1024 * 1024 * 1024,
  maxConcurrentQueries: 1,
});

/** SASL (PLAIN or SCRAM) and TLS settings every kafkajs client of an external cluster gets. */
export interface KafkaSecurity {
  readonly sasl?: { readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; readonly username: string; readonly password: string };
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string; readonly rejectUnauthorized: boolean };
}

/** Variables outside sluice's namespace that it reads. */
const FOREIGN_KEYS = new Set([
  'KAFKA_BROKERS',
  'SCHEMA_REGISTRY_URL',
  'CLICKHOUSE_URL',
  'JAVA_HOME',
  'UV_THREADPOOL_SIZE',
  'OTEL_SDK_DISABLED',
  'OTEL_TRACES_EXPORTER',
  'OTEL_SERVICE_NAME',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
]);

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
  const problems: string[] = [];
  const readSecret = (variable: string, file: string | undefined): string[] => {
    if (file === undefined) return [];
    try {
      return readFileSync(path.resolve(cwd, file), 'utf8')
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== '' && !line.startsWith('#'));
    } catch (cause) {
      problems.push(`${variable}: cannot read ${file}: ${(cause as Error).message}`);
      return [];
    }
  };
  const sharedTokens = [
    ...(e.SLUICE_AUTH_TOKEN === undefined ? [] : [e.SLUICE_AUTH_TOKEN]),
    ...readSecret('SLUICE_AUTH_TOKEN_FILE', e.SLUICE_AUTH_TOKEN_FILE),
  ];
  const tokens = (surface: string, token: string | undefined, file: string | undefined): string[] => {
    const own = [...(token === undefined ? [] : [token]), ...readSecret(`SLUICE_${surface}_AUTH_TOKEN_FILE`, file)];
    const all = own.length > 0 ? own : sharedTokens;
    if (all.some((value) => value.length < 16)) problems.push(`the ${surface.toLowerCase()} tokens must have at least 16 characters each`);
    return all;
  };
  const auth = {
    sql: tokens('SQL', e.SLUICE_SQL_AUTH_TOKEN, e.SLUICE_SQL_AUTH_TOKEN_FILE),
    registry: tokens('REGISTRY', e.SLUICE_REGISTRY_AUTH_TOKEN, e.SLUICE_REGISTRY_AUTH_TOKEN_FILE),
    ops: tokens('OPS', e.SLUICE_OPS_AUTH_TOKEN, e.SLUICE_OPS_AUTH_TOKEN_FILE),
  };
  const security = kafkaSecurity(e, cwd, readSecret, problems);
  if (security && e.KAFKA_BROKERS === undefined)
    problems.push('SLUICE_KAFKA_SASL_* and SLUICE_KAFKA_TLS* configure an external cluster: set KAFKA_BROKERS too');
  // Users' queries must leave libuv threads to the sink (chDB inserts), RocksDB and onnxruntime.
  const userQuerySlots = Math.max(1, (e.UV_THREADPOOL_SIZE ?? 4) - 3);
  if (e.SLUICE_SQL_MAX_CONCURRENT_QUERIES !== undefined && e.SLUICE_SQL_MAX_CONCURRENT_QUERIES > userQuerySlots)
    problems.push(
      `SLUICE_SQL_MAX_CONCURRENT_QUERIES: each running user query holds one of Node's ${e.UV_THREADPOOL_SIZE ?? 4} libuv threads ` +
        `(UV_THREADPOOL_SIZE), which the sink's inserts, RocksDB and onnxruntime need too: at most ${userQuerySlots}; ` +
        `start the process with a larger UV_THREADPOOL_SIZE for more`,
    );
  if (e.SLUICE_SQL_WRITABLE === 'true')
    problems.push(
      "SLUICE_SQL_WRITABLE: users' writes through the SQL endpoint were removed; it is read-only for users, and sluice's own jobs write through the data directory's writer socket",
    );
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
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
      security,
    },
    stages: {
      guarantee: e.SLUICE_GUARANTEE,
      maxInFlight: e.SLUICE_MAX_IN_FLIGHT,
      commitIntervalMs: e.SLUICE_COMMIT_INTERVAL_MS,
      stateCacheMaxBytes: e.SLUICE_STATE_CACHE_MB * 1024 * 1024,
      fetchMinBytes: e.SLUICE_FETCH_MIN_BYTES,
      fetchMaxWaitMs: e.SLUICE_FETCH_MAX_WAIT_MS,
    },
    metrics: { host: e.SLUICE_METRICS_HOST, port: e.SLUICE_METRICS_PORT, advertisedHost: e.SLUICE_METRICS_ADVERTISED_HOST },
    sql: {
      host: e.SLUICE_SQL_HOST,
      port: e.SLUICE_SQL_PORT,
      writable: false,
      limits: {
        maxExecutionTimeS: e.SLUICE_SQL_MAX_EXECUTION_TIME,
        maxResultRows: e.SLUICE_SQL_MAX_RESULT_ROWS,
        maxResultBytes: e.SLUICE_SQL_MAX_RESULT_BYTES,
        maxMemoryBytes: e.SLUICE_SQL_MAX_MEMORY,
        maxConcurrentQueries: e.SLUICE_SQL_MAX_CONCURRENT_QUERIES ?? userQuerySlots,
      },
    },
    auth,
    alerts: { webhookUrl: e.SLUICE_ALERT_WEBHOOK_URL },
    clickhouse: { url: e.CLICKHOUSE_URL },
    schemaRegistry: {
      externalUrl: e.SCHEMA_REGISTRY_URL?.replace(/\/+$/, ''),
      host: e.SLUICE_SCHEMA_REGISTRY_HOST,
      port: e.SLUICE_SCHEMA_REGISTRY_PORT,
    },
    tracing: {
      exporter:
        e.OTEL_SDK_DISABLED === 'true'
          ? 'none'
          : (e.OTEL_TRACES_EXPORTER ??
            (e.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined || e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT !== undefined ? 'otlp' : 'none')),
      serviceName: e.OTEL_SERVICE_NAME,
    },
  });
}

type Environment = z.infer<typeof environmentSchema>;

function kafkaSecurity(
  e: Environment,
  cwd: string,
  readSecret: (variable: string, file: string | undefined) => string[],
  problems: string[],
): KafkaSecurity | undefined {
  let sasl: KafkaSecurity['sasl'];
  const password = e.SLUICE_KAFKA_SASL_PASSWORD ?? readSecret('SLUICE_KAFKA_SASL_PASSWORD_FILE', e.SLUICE_KAFKA_SASL_PASSWORD_FILE)[0];
  if (e.SLUICE_KAFKA_SASL_MECHANISM !== undefined) {
    if (e.SLUICE_KAFKA_SASL_USERNAME === undefined || password === undefined)
      problems.push('SLUICE_KAFKA_SASL_MECHANISM needs SLUICE_KAFKA_SASL_USERNAME and SLUICE_KAFKA_SASL_PASSWORD (or _PASSWORD_FILE)');
    else sasl = { mechanism: e.SLUICE_KAFKA_SASL_MECHANISM, username: e.SLUICE_KAFKA_SASL_USERNAME, password };
  } else if (e.SLUICE_KAFKA_SASL_USERNAME !== undefined || password !== undefined) {
    problems.push('SLUICE_KAFKA_SASL_USERNAME/PASSWORD need SLUICE_KAFKA_SASL_MECHANISM (plain, scram-sha-256 or scram-sha-512)');
  }
  const pem = (variable: string, file: string | undefined): string | undefined => {
    if (file === undefined) return undefined;
    try {
      return readFileSync(path.resolve(cwd, file), 'utf8');
    } catch (cause) {
      problems.push(`${variable}: cannot read ${file}: ${(cause as Error).message}`);
      return undefined;
    }
  };
  const files = [e.SLUICE_KAFKA_TLS_CA_FILE, e.SLUICE_KAFKA_TLS_CERT_FILE, e.SLUICE_KAFKA_TLS_KEY_FILE];
  let tls: KafkaSecurity['tls'];
  if (e.SLUICE_KAFKA_TLS === 'true') {
    if ((e.SLUICE_KAFKA_TLS_CERT_FILE === undefined) !== (e.SLUICE_KAFKA_TLS_KEY_FILE === undefined))
      problems.push('SLUICE_KAFKA_TLS_CERT_FILE and SLUICE_KAFKA_TLS_KEY_FILE go together (a client certificate and its key)');
    const ca = pem('SLUICE_KAFKA_TLS_CA_FILE', e.SLUICE_KAFKA_TLS_CA_FILE);
    const cert = pem('SLUICE_KAFKA_TLS_CERT_FILE', e.SLUICE_KAFKA_TLS_CERT_FILE);
    const key = pem('SLUICE_KAFKA_TLS_KEY_FILE', e.SLUICE_KAFKA_TLS_KEY_FILE);
    tls = {
      rejectUnauthorized: e.SLUICE_KAFKA_TLS_REJECT_UNAUTHORIZED === 'true',
      ...(ca === undefined ? {} : { ca }),
      ...(cert === undefined ? {} : { cert }),
      ...(key === undefined ? {} : { key }),
    };
  } else if (files.some((file) => file !== undefined)) {
    problems.push('SLUICE_KAFKA_TLS_*_FILE need SLUICE_KAFKA_TLS=true');
  }
  if (!sasl && !tls) return undefined;
  return { ...(sasl ? { sasl } : {}), ...(tls ? { tls } : {}) };
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
