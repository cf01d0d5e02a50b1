import { SluiceError } from './errors.js';

export interface RetryOptions {
  /** Attempts in all, the first one included. */
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Decides which failures are worth another attempt; by default SluiceErrors marked retriable. */
  readonly isRetriable?: (error: unknown) => boolean;
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
  readonly signal?: AbortSignal;
}

export class RetriesExhaustedError extends SluiceError {
  constructor(attempts: number, cause: unknown) {
    const last = cause instanceof Error ? cause.message : String(cause);
    super('SLUICE_RETRIES_EXHAUSTED', `gave up after ${attempts} attempts: ${last}`, {
      cause,
      context: { attempts },
    });
  }
}

const defaultIsRetriable = (error: unknown): boolean => error instanceof SluiceError && error.retriable;

/** Full-jitter exponential backoff delay for the given (1-based) attempt that just failed. */
export function backoffDelay(attempt: number, initialDelayMs: number, maxDelayMs: number): number {
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
  return Math.round(Math.random() * ceiling);
}

/**
 * Runs `operation` until it succeeds, retrying only retriable failures with exponential backoff
 * and jitter. A non-retriable failure is thrown as it is; running out of attempts throws
 * RetriesExhaustedError with the last failure as its cause.
 */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const isRetriable = options.isRetriable ?? defaultIsRetriable;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (!isRetriable(error)) throw error;
      if (attempt >= options.attempts) throw new RetriesExhaustedError(attempt, error);
      const delayMs = backoffDelay(attempt, options.initialDelayMs, options.maxDelayMs);
      options.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, options.signal);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      if (signal) reject(abortReason(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal.reason });
}
