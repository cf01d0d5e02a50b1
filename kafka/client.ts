import { createRequire } from 'node:module';
import kafkajs, { type Kafka as KafkaClient, type KafkaConfig, type logCreator } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaSecurity } from '../common/config.js';
import { KafkaUnreachableError } from './errors.js';
import { sleep } from '../common/retry.js';

// kafkajs is CommonJS: its values come through the default export under Node's ESM loader.
const { Kafka, logLevel } = kafkajs;

/**
 * kafkajs lines that are not news: its v2 partitioner notice, its advice against bounded retries
 * for idempotent producers (ours fail loudly instead of retrying forever), and per-request error
 * responses of its connection layer, which it retries itself (coordinator loading, leader moves).
 */
const ROUTINE = [/switched default partitioner/, /Limiting retries for the idempotent producer/];

/**
 * The protocol errors kafkajs retries, by their message (its own table; "concurrent operation on
 * the same transaction" and "not the leader for that topic-partition" are the usual ones while a
 * stack starts). kafkajs logs each failed attempt at ERROR level although it is about to retry.
 */
const RETRIABLE_MESSAGES: readonly { readonly type: string; readonly message: string }[] = (() => {
  try {
    const table = createRequire(import.meta.url)('kafkajs/src/protocol/error.js') as {
      errorCodes: { type: string; retriable: boolean; message: string }[];
    };
    return table.errorCodes.filter((entry) => entry.retriable).map(({ type, message }) => ({ type, message }));
  } catch {
    return [];
  }
})();

/** The kafkajs error type of an ERROR line that reports an attempt kafkajs retries; undefined for real errors. */
export function retriedErrorType(message: string, extra: Readonly<Record<string, unknown>>): string | undefined {
  const known = RETRIABLE_MESSAGES.find((entry) => message.includes(entry.message));
  if (known) return known.type;
  if (message.startsWith('Restarting the consumer')) return 'CONSUMER_RESTART';
  // A broker connection attempt inside kafkajs' retrier (it carries the attempt number): tried again.
  if (message.startsWith('Failed to connect to') && 'retryCount' in extra) return 'CONNECTION';
  return undefined;
}

export interface RetriedErrorCount {
  /** The kafkajs component (Producer, Consumer, ...). */
  readonly namespace: string;
  /** The kafkajs error type (NOT_LEADER_FOR_PARTITION, CONCURRENT_TRANSACTIONS, ...). */
  readonly error: string;
  readonly count: number;
}

/** Errors kafkajs retried itself in this process, by component and type (client-metrics.ts exports them). */
const retried = new Map<string, RetriedErrorCount>();

export function retriedErrorCounts(): readonly RetriedErrorCount[] {
  return [...retried.values()];
}

function countRetried(namespace: string, error: string): void {
  const key = `${namespace}|${error}`;
  retried.set(key, { namespace, error, count: (retried.get(key)?.count ?? 0) + 1 });
}

/** Routes kafkajs' own log lines into the stage's pino logger. */
function pinoLogCreator(logger: Logger): logCreator {
  return () =>
    ({ level, log, namespace }) => {
      const { message, ...extra } = log;
      const fields: Record<string, unknown> = { kafkajs: namespace, ...extra };
      if (ROUTINE.some((pattern) => pattern.test(message))) logger.debug(fields, message);
      else if (level === logLevel.ERROR && namespace === 'Connection') logger.debug(fields, message);
      else if (level === logLevel.ERROR) {
        const type = retriedErrorType(message, extra);
        if (type === undefined) {
          logger.error(fields, message);
        } else {
          countRetried(namespace, type);
          logger.debug(fields, message);
        }
      } else if (level === logLevel.WARN) logger.warn(fields, message);
      else if (level === logLevel.INFO) logger.debug(fields, message);
      else logger.trace(fields, message);
    };
}

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly logger?: Logger;
  readonly connectionTimeoutMs?: number;
  readonly retries?: number;
  /** SASL and TLS for this client; default: the process's (`useKafkaSecurity`). */
  readonly security?: KafkaSecurity;
}

let processSecurity: KafkaSecurity | undefined;

/**
 * Sets the SASL/TLS settings every kafkajs client of this process gets (an external cluster's,
 * from the configuration). Entry points call it once, after loading the configuration, so every
 * producer, consumer and admin — whichever module creates it — authenticates the same way.
 */
export function useKafkaSecurity(security: KafkaSecurity | undefined): void {
  processSecurity = security;
}

export function createKafka(options: KafkaClientOptions): KafkaClient {
  const config: KafkaConfig = {
    brokers: [...options.brokers],
    clientId: options.clientId,
    connectionTimeout: options.connectionTimeoutMs ?? 3000,
    // kafkajs's own schedule, spelled out: under NODE_ENV=test it would otherwise switch to one that
    // gives up after about a second, and tests would run another client than users do.
    retry: { retries: options.retries ?? 5, initialRetryTime: 300, maxRetryTime: 30_000, factor: 0.2, multiplier: 2 },
    logLevel: options.logger ? logLevel.INFO : logLevel.NOTHING,
    ...kafkaSecurityConfig(options.security ?? processSecurity),
  };
  if (options.logger) config.logCreator = pinoLogCreator(options.logger);
  return new Kafka(config);
}

/** kafkajs' `sasl` and `ssl` options for the settings. */
export function kafkaSecurityConfig(security: KafkaSecurity | undefined): Pick<KafkaConfig, 'sasl' | 'ssl'> {
  if (!security) return {};
  const { sasl, tls } = security;
  return {
    ...(sasl ? { sasl: { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as KafkaConfig['sasl'] } : {}),
    ...(tls
      ? {
          ssl: {
            rejectUnauthorized: tls.rejectUnauthorized,
            ...(tls.ca === undefined ? {} : { ca: [tls.ca] }),
            ...(tls.cert === undefined ? {} : { cert: tls.cert }),
            ...(tls.key === undefined ? {} : { key: tls.key }),
          },
        }
      : {}),
  };
}

export interface ClusterInfo {
  readonly clusterId: string;
  readonly brokers: readonly string[];
  readonly controller: number | null;
}

/** One metadata round trip; throws KafkaUnreachableError when the cluster does not answer. */
export async function describeCluster(brokers: readonly string[], timeoutMs = 3000): Promise<ClusterInfo> {
  const admin = createKafka({ brokers, clientId: 'sluice-probe', connectionTimeoutMs: timeoutMs, retries: 0 }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return {
      clusterId: cluster.clusterId,
      brokers: cluster.brokers.map((broker) => `${broker.host}:${broker.port}`),
      controller: cluster.controller,
    };
  } catch (cause) {
    throw new KafkaUnreachableError(brokers, { cause });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Polls until the cluster answers a metadata request, or throws after timeoutMs. */
export async function waitForKafka(
  brokers: readonly string[],
  timeoutMs: number,
  stillWorthWaiting: () => boolean = () => true,
): Promise<ClusterInfo> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline && stillWorthWaiting()) {
    try {
      return await describeCluster(brokers, Math.min(2000, Math.max(250, deadline - Date.now())));
    } catch (error) {
      lastError = error;
      await sleep(200);
    }
  }
  throw lastError instanceof KafkaUnreachableError ? lastError : new KafkaUnreachableError(brokers, { cause: lastError });
}

/**
 * Waits until the cluster can coordinate consumer groups (a fresh broker creates
 * __consumer_offsets on the first FindCoordinator, which takes a while on a small machine):
 * consumers started before that crash with "group coordinator not found".
 */
export async function waitForGroupCoordinator(brokers: readonly string[], timeoutMs: number): Promise<void> {
  const kafka = createKafka({ brokers, clientId: 'sluice-readiness' });
  const admin = kafka.admin({ retry: { retries: 0 } });
  await admin.connect();
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      try {
        await admin.describeGroups(['sluice-readiness-probe']);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new KafkaUnreachableError(brokers, { cause: error });
        await sleep(250);
      }
    }
  } finally {
    await admin.disconnect();
  }
}
