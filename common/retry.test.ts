import { describe, expect, it, vi } from 'vitest';
import { SluiceError } from './errors.js';
import { backoffDelay, RetriesExhaustedError, retry, sleep } from './retry.js';

const transient = (): SluiceError => new SluiceError('T', 'broker not available', { retriable: true });
const fatal = (): SluiceError => new SluiceError('F', 'bad record');
const fast = { attempts: 4, initialDelayMs: 1, maxDelayMs: 2 };

describe('retry', () => {
  it('returns the first success without retrying', async () => {
    const operation = vi.fn(() => Promise.resolve(42));
    await expect(retry(operation, fast)).resolves.toBe(42);
    expect(operation).toHaveBeenCalledTimes(1);
  });

  it('retries retriable failures until one succeeds, reporting each retry', async () => {
    const onRetry = vi.fn();
    let calls = 0;
    const result = await retry(
      (attempt) => {
        calls++;
        return attempt < 3 ? Promise.reject(transient()) : Promise.resolve(attempt);
      },
      { ...fast, onRetry },
    );
    expect(result).toBe(3);
    expect(calls).toBe(3);
    expect(onRetry).toHaveBeenCalledTimes(2);
  });

  it('throws a non-retriable failure at once, unwrapped', async () => {
    const error = fatal();
    let calls = 0;
    await expect(
      retry(() => {
        calls++;
        return Promise.reject(error);
      }, fast),
    ).rejects.toBe(error);
    expect(calls).toBe(1);
  });

  it('wraps the last failure once attempts run out', async () => {
    const failure = retry(() => Promise.reject(transient()), fast);
    await expect(failure).rejects.toBeInstanceOf(RetriesExhaustedError);
    await expect(failure).rejects.toMatchObject({ message: 'gave up after 4 attempts: broker not available', cause: { code: 'T' } });
  });

  it('uses a custom predicate when given one', async () => {
    let calls = 0;
    await expect(
      retry(
        () => {
          calls++;
          return Promise.reject(new Error('ETIMEDOUT'));
        },
        { ...fast, isRetriable: () => true },
      ),
    ).rejects.toBeInstanceOf(RetriesExhaustedError);
    expect(calls).toBe(4);
  });

  it('stops waiting when aborted', async () => {
    const controller = new AbortController();
    const waiting = sleep(10_000, controller.signal);
    controller.abort(new Error('shutting down'));
    await expect(waiting).rejects.toThrow('shutting down');
  });
});

describe('backoffDelay', () => {
  it('stays within the doubling ceiling and the maximum', () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const delay = backoffDelay(attempt, 100, 2_000);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(Math.min(2_000, 100 * 2 ** (attempt - 1)));
    }
  });
});
