import { backoffDelay, sleep } from '../common/retry.js';
import { SluiceError } from '../common/errors.js';

/**
 * Whether a Kafka client failure is worth another attempt: a kafkajs error marked retriable
 * (leader moves, a topic-partition the broker does not host yet, coordinator loading, timeouts,
 * lost connections), also when it is wrapped (kafkajs' "number of retries exceeded" keeps the
 * retriable error as `originalError`; our own errors keep theirs as `cause`).
 */
export function isRetriableKafkaError(error: unknown): boolean {
  for (const current of errorChain(error)) {
    if (current instanceof SluiceError && current.retriable) return true;
    if ('retriable' in current && current.retriable === true) return true;
    // kafkajs gives up on these after its own few retries, but they pass: a coordinator being
    // elected (a fresh broker creates __transaction_state on first use), a broker restarting.
    if ('name' in current && typeof current.name === 'string' && TRANSIENT_KAFKAJS_ERRORS.has(current.name)) return true;
  }
  return false;
}

/**
 * An error, then each error it wraps: kafkajs keeps the one it gave up on as `originalError`, our
 * own errors keep theirs as `cause` (a cycle ends the walk).
 */
export function* errorChain(error: unknown): Generator<object> {
  const seen = new Set<unknown>();
  for (let current: unknown = error; typeof current === 'object' && current !== null && !seen.has(current);) {
    seen.add(current);
    yield current;
    current = ('originalError' in current && current.originalError) || ('cause' in current && current.cause) || undefined;
  }
}

/** Whether the error, or one it wraps, is a broker's answer of one of these kinds (`UNKNOWN_TOPIC_OR_PARTITION`, …). */
export function hasKafkaErrorType(error: unknown, ...types: readonly string[]): boolean {
  for (const current of errorChain(error))
    if ('type' in current && typeof current.type === 'string' && types.includes(current.type)) return true;
  return false;
}

const TRANSIENT_KAFKAJS_ERRORS = new Set([
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSBrokerNotFound',
  'KafkaJSConnectionError',
  'KafkaJSRequestTimeoutError',
]);

export interface KafkaRetryOptions {
  /** Total time to keep trying, ms (default 120 s). */
  readonly timeoutMs?: number;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  /** Stops retrying (the caller closed meanwhile): the last error is thrown. */
  readonly stillWanted?: () => boolean;
}

/** Runs a Kafka operation, retrying retriable failures with backoff until a deadline. */
export async function retryKafka<T>(operation: () => Promise<T>, options: KafkaRetryOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!isRetriableKafkaError(error) || Date.now() >= deadline || options.stillWanted?.() === false) throw error;
      const delayMs = Math.max(50, backoffDelay(attempt, options.initialDelayMs ?? 200, options.maxDelayMs ?? 5_000));
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs);
    }
  }
}
